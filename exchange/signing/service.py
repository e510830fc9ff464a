"""Brands' signing keys, and verification of the requests they sign.

A signed request carries a compact JWS (RFC 7515) with a detached payload: the payload is the exact bytes of
the request body, base64url-encoded into the signing input (RFC 7515 appendix F) and left out of the
serialization, so the token reads `<header>..<signature>`. Its protected header is

    {"alg": "EdDSA", "kid": "<the key id>", "alliance_tenant": <tenant id>, "method": "POST",
     "path": "/v1/...", "iat": <unix seconds>, "jti": "<optional: a random id>"}

The JWS itself is parsed and verified by joserfc; this module decides which key, which window and which
refusal. A signature is accepted once: a retry of a request is signed afresh (same Idempotency-Key, new
signature). Ed25519 signatures are deterministic, so the same request signed twice in one second is the same
signature unless a `jti` sets them apart (the SDK always sends one). Nothing here commits: a verified signature
is recorded as seen in the caller's transaction, so it is consumed exactly when the caller's change is."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import OKPKey
from joserfc.registry import HeaderParameter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.crypto.platform_key import eddsa_without_warnings
from alliance.db import driver_connection
from alliance.db.tenancy import scoped_tenant_id
from alliance.errors import ProblemError
from exchange.refusals import refusal
from exchange.signing.models import SeenSignature, SigningKey
from exchange.signing.schemas import KID_PATTERN, SigningKeyCreate, SigningKeyRead, b64url_decode

ALGORITHM = "EdDSA"
TENANT_MEMBER = "alliance_tenant"
# A signature is fresh for this long after its iat; it may claim an iat this far ahead (clock skew).
MAX_AGE = timedelta(seconds=300)
MAX_FUTURE_SKEW = timedelta(seconds=60)
MAX_SIGNATURE_CHARS = 4096
MAX_KEYS = 20  # unrevoked keys per brand (a soft cap: concurrent registrations may pass it by a few)
# Other tenants' keys with the caller's kid tried, to tell "another brand's key" from "no such key".
MAX_FOREIGN_KEYS_TRIED = 10

HEADER_MEMBERS = frozenset({"alg", "kid", TENANT_MEMBER, "method", "path", "iat", "typ", "jti"})
_REGISTRY = jws.JWSRegistry(
    header_registry={
        TENANT_MEMBER: HeaderParameter("The tenant the request is for", "int", required=True),
        "method": HeaderParameter("The request's HTTP method", "str", required=True),
        "path": HeaderParameter("The request's path, without the query", "str", required=True),
        "iat": HeaderParameter("When it was signed, in seconds since the epoch", "int", required=True),
        # Optional: a random value that keeps two signatures of one request in one second apart (retries).
        "jti": HeaderParameter("A unique id of this signature", "str"),
    },
    algorithms=[ALGORITHM],
)
_REGISTRY.max_header_length = MAX_SIGNATURE_CHARS
_KID = re.compile(KID_PATTERN)

@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A verified signed request: what the caller stores with its change for non-repudiation."""

    tenant_id: int
    kid: str
    header: dict[str, Any]  # the verified protected header
    body: bytes  # the exact signed bytes
    signature: str  # the compact JWS as received (payload detached): with `body` it verifies again
    digest: bytes  # sha256 of the signature bytes: the replay key
    issued_at: datetime

    @property
    def expires_at(self) -> datetime:
        """Until when a second use is a replay (after it, the signature is stale anyway)."""
        return self.issued_at + MAX_AGE


def _refuse(status: int, code: str, title: str, detail: str | None = None, **extra: Any) -> ProblemError:
    return ProblemError(status, code, title, detail, extra=extra)


# --- keys: the brand API ---------------------------------------------------------------------------------


def key_status(key: SigningKey, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    if key.revoked_at is not None:
        return "revoked"
    if now < key.not_before:
        return "scheduled"
    if key.not_after is not None and now >= key.not_after:
        return "expired"
    return "active"


def key_read(key: SigningKey) -> SigningKeyRead:
    return SigningKeyRead(
        kid=key.kid, public_jwk=key.public_jwk, not_before=key.not_before, not_after=key.not_after,
        revoked_at=key.revoked_at, created_at=key.created_at, status=key_status(key),
    )


async def register_key(session: AsyncSession, data: SigningKeyCreate) -> SigningKey:
    """Registers a brand's public key (already checked by the schema to be Ed25519 and public only)."""
    now = datetime.now(UTC)
    if data.not_after is not None and data.not_after <= now:
        raise _refuse(422, "validation_error", "The request is not valid", "not_after is in the past",
                      errors=[{"key": "not_after", "message": "is in the past"}])
    OKPKey.import_key(data.public_jwk)  # the library agrees it is a key (the schema checked its shape)
    if await session.scalar(select(SigningKey.id).where(SigningKey.kid == data.kid)) is not None:
        raise _refuse(409, "signing_key_kid_taken", "This brand already has a key with this kid",
                      "A kid names one key forever, even once revoked: choose another.", kid=data.kid)
    unrevoked = select(func.count()).select_from(SigningKey).where(SigningKey.revoked_at.is_(None))
    if await session.scalar(unrevoked) >= MAX_KEYS:
        raise _refuse(409, "signing_key_limit_reached", "This brand has too many signing keys",
                      f"A brand may have {MAX_KEYS} unrevoked keys; revoke one first.")
    key = SigningKey(kid=data.kid, public_jwk=data.public_jwk, not_after=data.not_after,
                     **({"not_before": data.not_before} if data.not_before else {}))
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return key


async def list_keys(session: AsyncSession) -> list[SigningKey]:
    return list(await session.scalars(select(SigningKey).order_by(SigningKey.id)))


async def get_key(session: AsyncSession, kid: str, *, lock: bool = False) -> SigningKey:
    query = select(SigningKey).where(SigningKey.kid == kid)
    key = await session.scalar(query.with_for_update() if lock else query)
    if key is None:
        raise _refuse(404, "signing_key_not_found", "No such signing key", kid=kid)
    return key


async def revoke_key(session: AsyncSession, kid: str) -> SigningKey:
    """Revokes the key from now on, once (revoking again changes nothing). Requests it signed are refused."""
    key = await get_key(session, kid, lock=True)
    if key.revoked_at is None:
        key.revoked_at = func.now()
        await session.flush()
        await session.refresh(key)
    return key


# --- verification ------------------------------------------------------------------------------------------


def _parse(signature: str) -> tuple[dict[str, Any], bytes]:
    """The protected header and the signature bytes of a detached compact JWS, or signature_malformed."""

    def malformed(detail: str) -> ProblemError:
        return _refuse(400, "signature_malformed", "The request signature is malformed", detail)

    if len(signature) > MAX_SIGNATURE_CHARS or not signature.isascii():
        raise malformed("Expected a compact JWS of at most 4096 ASCII characters.")
    parts = signature.split(".")
    if len(parts) != 3:
        raise malformed("Expected a compact JWS: header..signature (the payload detached).")
    if parts[1]:
        raise malformed("The payload must be detached: the body is signed as sent, not carried in the JWS.")
    try:
        header = jws.extract_compact(signature.encode(), b"", _REGISTRY).protected
        if not isinstance(header, dict):
            raise ValueError("the protected header is not a JSON object")
        _REGISTRY.check_header(header)
        signature_bytes = b64url_decode(parts[2])
    except (JoseError, ValueError, TypeError) as error:
        raise malformed(f"Not a valid JWS: {error}") from None
    unknown = sorted(header.keys() - HEADER_MEMBERS)
    if unknown:
        raise malformed(f"Unexpected protected header members: {', '.join(unknown)}.")
    if header["alg"] != ALGORITHM:
        raise malformed(f'The algorithm must be "{ALGORITHM}" (Ed25519).')
    if not isinstance(header.get("kid"), str) or not _KID.match(header["kid"]):
        raise malformed('The protected header needs the "kid" of a registered key.')
    if type(header[TENANT_MEMBER]) is not int or type(header["iat"]) is not int:
        raise malformed(f'"{TENANT_MEMBER}" and "iat" must be integers.')
    if "jti" in header and not (isinstance(header["jti"], str) and 1 <= len(header["jti"]) <= 64):
        raise malformed('"jti" must be a string of 1 to 64 characters.')
    if len(signature_bytes) != 64:
        raise malformed("An Ed25519 signature is 64 bytes.")
    return header, signature_bytes


def _verifies(signature: str, body: bytes, key: OKPKey) -> bool:
    try:
        with eddsa_without_warnings():
            jws.deserialize_compact(signature, key, algorithms=[ALGORITHM], registry=_REGISTRY, payload=body)
    except BadSignatureError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    """What verification needs of a brand's key. Everything but revoked_at is fixed once registered."""

    key: OKPKey
    not_before: datetime
    not_after: datetime | None
    revoked_at: datetime | None


class CachedKeys:
    """Brands' keys from a process-wide cache, read through `conn` on a miss: the exchange's hot path. A key's
    material and window never change once registered; its revocation may, so whoever consumes a signature verified
    this way re-checks revocation in that transaction (exchange__consume_signature does)."""

    TTL_SECONDS = 300.0
    MAX_ENTRIES = 10_000
    _cache: dict[tuple[int, str], tuple[RegisteredKey, float]] = {}

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def key(self, tenant_id: int, kid: str) -> RegisteredKey | None:
        cached = self._cache.get((tenant_id, kid))
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        row = await self.conn.fetchrow(
            """SELECT public_jwk::text, not_before, not_after, revoked_at FROM signing_keys
               WHERE tenant_id = $1 AND kid = $2""", tenant_id, kid)
        if row is None:
            return None
        key = RegisteredKey(OKPKey.import_key(json.loads(row["public_jwk"])), row["not_before"], row["not_after"],
                            row["revoked_at"])
        if len(self._cache) >= self.MAX_ENTRIES:
            self._cache.clear()
        self._cache[tenant_id, kid] = (key, time.monotonic() + self.TTL_SECONDS)
        return key

    async def foreign_keys(self, tenant_id: int, kid: str) -> list[OKPKey]:
        """Other brands' keys with this kid (a few at most): to tell "another brand's key" from "no such key".
        This is the one look-up across tenants: it reveals nothing the caller does not hold already (it has the
        signature), and tells a brand that it signs with the wrong key."""
        rows = await self.conn.fetch(
            "SELECT public_jwk::text FROM signing_keys WHERE kid = $1 AND tenant_id <> $2 LIMIT $3",
            kid, tenant_id, MAX_FOREIGN_KEYS_TRIED)
        return [OKPKey.import_key(json.loads(row[0])) for row in rows]


async def check_signed_request(
    keys: CachedKeys, *, tenant_id: int, method: str, path: str, body: bytes, signature: str | None,
    now: datetime | None = None,
) -> SignedRequest:
    """Every check of a brand's signature on a request but the replay check, which the caller makes in the
    transaction of the change the request makes (exchange__consume_signature). Refuses with a distinct problem code for each
    reason; returns the verified header and signed bytes."""
    now = now or datetime.now(UTC)
    if not signature:
        raise _refuse(401, "signature_missing", "The request is not signed",
                      "Sign the request body with the brand's signing key (Alliance-Signature header).")
    header, signature_bytes = _parse(signature)
    kid = header["kid"]

    mismatched = [name for name, claimed, actual in (
        ("tenant", header[TENANT_MEMBER], tenant_id), ("method", header["method"], method.upper()),
        ("path", header["path"], path)) if claimed != actual]
    if mismatched:
        raise _refuse(403, "signature_wrong_tenant", "The signature was made for another tenant or request",
                      f"The signed {', '.join(mismatched)} differ(s) from this request's.", mismatched=mismatched)

    key = await keys.key(tenant_id, kid)
    if key is None:
        if any(_verifies(signature, body, foreign) for foreign in await keys.foreign_keys(tenant_id, kid)):
            raise _refuse(403, "signature_wrong_tenant", "The signature was made with another tenant's key",
                          "Sign with a key registered by this brand.", mismatched=["key"])
        raise _refuse(401, "signing_key_unknown", "No signing key of this brand has this kid", kid=kid)

    if not _verifies(signature, body, key.key):
        raise _refuse(401, "signature_invalid", "The signature does not match the request",
                      "The body or the protected header was changed after signing, or another key signed it.")
    if key.revoked_at is not None:
        raise _refuse(401, "signing_key_revoked", "The signing key was revoked", kid=kid)
    if now < key.not_before or (key.not_after is not None and now >= key.not_after):
        raise _refuse(401, "signing_key_not_valid_now", "The signing key is outside its validity window", kid=kid,
                      not_before=key.not_before.isoformat(),
                      not_after=key.not_after.isoformat() if key.not_after else None)
    issued_at = datetime.fromtimestamp(header["iat"], UTC) if abs(header["iat"]) < 2**40 else None
    if issued_at is None or now - issued_at > MAX_AGE or issued_at - now > MAX_FUTURE_SKEW:
        raise _refuse(401, "signature_stale", "The signature is too old or dated in the future",
                      f"Sign each request when sending it: iat may be up to {int(MAX_AGE.total_seconds())} s "
                      f"old and {int(MAX_FUTURE_SKEW.total_seconds())} s ahead.")
    return SignedRequest(tenant_id=tenant_id, kid=kid, header=header, body=body, signature=signature,
                         digest=hashlib.sha256(signature_bytes).digest(), issued_at=issued_at)


async def verify_signed_request(
    session: AsyncSession, *, tenant_id: int, method: str, path: str, body: bytes, signature: str | None,
    now: datetime | None = None,
) -> SignedRequest:
    """Verifies a brand's signature on a request and consumes it in the caller's transaction, through the same
    SQL the exchange's operations consume theirs with (exchange__consume_signature: a second use within the
    signature's window is a replay; a key revoked since it was cached is refused)."""
    try:
        scoped = scoped_tenant_id(session)
    except RuntimeError:
        scoped = tenant_id
    if scoped != tenant_id:
        raise RuntimeError(f"verifying for tenant {tenant_id} in a session of tenant {scoped}")
    conn = await driver_connection(session)
    signed = await check_signed_request(CachedKeys(conn), tenant_id=tenant_id, method=method, path=path,
                                        body=body, signature=signature, now=now)
    rejected = await conn.fetchval("SELECT exchange__consume_signature($1, $2, $3, $4)::text", tenant_id,
                                   signed.kid, signed.digest, signed.expires_at)
    if rejected is not None:
        rejection = json.loads(rejected)
        raise refusal(rejection["code"], rejection["detail"])
    return signed


async def prune_seen_signatures(session: AsyncSession, now: datetime | None = None) -> int:
    """Deletes the seen signatures that are past their staleness window (any tenant's): a maintenance job."""
    result = await session.execute(
        SeenSignature.__table__.delete().where(SeenSignature.expires_at <= (now or datetime.now(UTC)))
    )
    return result.rowcount
