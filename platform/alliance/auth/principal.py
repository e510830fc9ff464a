"""Resolving the caller: every request under /v1 carries `Authorization: Bearer <key>`; the key resolves to a
Principal, and the guards below decide which endpoints it reaches. A brand key's tenant comes from the key,
never from the request, so a brand can only ever address its own data."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.auth.keys import KeyKind, parse_key
from alliance.auth.models import ApiKey
from alliance.errors import ProblemError


@dataclass(frozen=True)
class Principal:
    kind: KeyKind
    key_id: str
    tenant_id: int | None

    @property
    def is_operator(self) -> bool:
        return self.kind is KeyKind.OPERATOR


UNAUTHORIZED = ProblemError(401, "unauthorized", "A valid API key is required",
                            "Send it as `Authorization: Bearer <key>`.")


async def authenticate(session: AsyncSession, authorization: str | None) -> Principal:
    scheme, _, token = (authorization or "").partition(" ")
    presented = parse_key(token.strip()) if scheme.lower() == "bearer" else None
    if presented is None:
        raise UNAUTHORIZED
    key = await session.scalar(
        select(ApiKey).where(ApiKey.key_id == presented.key_id, ApiKey.revoked_at.is_(None))
    )
    if key is None or key.kind != presented.kind.value or not hmac.compare_digest(key.key_hash, presented.hash):
        raise UNAUTHORIZED
    return Principal(KeyKind(key.kind), key.key_id, key.tenant_id)
