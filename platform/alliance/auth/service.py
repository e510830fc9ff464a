"""Issuing, listing and revoking API keys. Never commits; the caller's boundary does."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.auth.keys import IssuedKey, KeyKind, issue_key
from alliance.auth.models import ApiKey
from alliance.errors import ProblemError


async def create_key(session: AsyncSession, *, kind: KeyKind, name: str, tenant_id: int | None) -> tuple[ApiKey, IssuedKey]:
    issued = issue_key(kind)
    key = ApiKey(key_id=issued.key_id, kind=kind.value, tenant_id=tenant_id, name=name, key_hash=issued.hash)
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return key, issued


async def list_keys(session: AsyncSession, tenant_id: int) -> list[ApiKey]:
    return list(await session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.id)))


async def revoke_key(session: AsyncSession, tenant_id: int, key_id: str) -> ApiKey:
    key = await session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.key_id == key_id))
    if key is None:
        raise ProblemError(404, "key_not_found", "No such key", extra={"key_id": key_id})
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await session.flush()
    return key
