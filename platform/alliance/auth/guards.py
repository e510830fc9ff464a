"""Guards of the /v1 API: authenticate every request, apply the per-key rate limit, and keep brand keys
and operator keys on their own sides."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.auth.keys import hash_key
from alliance.auth.principal import Principal, authenticate
from alliance.db.tenancy import in_tenant_transaction
from alliance.errors import ProblemError
from alliance.settings import get_settings

T = TypeVar("T")

# Verified keys, by their hash, for a few seconds: a key is looked up once per window, not per request.
# A revocation therefore takes up to this long to apply.
VERIFIED_KEY_TTL_SECONDS = 5.0
_MAX_CACHED_KEYS = 10_000
_verified: dict[bytes, tuple[Principal, float]] = {}


async def authenticated(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    state = connection.app.state
    authorization = connection.headers.get("authorization") or ""
    cache_key = hash_key(authorization)
    cached = _verified.get(cache_key)
    if cached is not None and cached[1] > time.monotonic():
        principal = cached[0]
    else:
        async with state.db.sessions() as session:
            principal = await authenticate(session, authorization)
        if len(_verified) >= _MAX_CACHED_KEYS:
            _verified.clear()
        _verified[cache_key] = (principal, time.monotonic() + VERIFIED_KEY_TTL_SECONDS)
    await enforce_rate_limit(state.redis, principal, get_settings().rate_limit_per_second)
    connection.scope["state"]["principal"] = principal


def forget_verified_keys() -> None:
    """After a revocation: this process stops trusting cached keys at once (others within the TTL)."""
    _verified.clear()


async def enforce_rate_limit(redis: Redis, principal: Principal, per_second: int) -> None:
    """A fixed one-second window per key: one round trip to Redis."""
    second = int(time.time())
    key = f"alliance:rate:{principal.key_id}:{second}"
    async with redis.pipeline(transaction=False) as pipe:
        count, _ = await pipe.incr(key).expire(key, 2).execute()
    if count > per_second:
        raise ProblemError(429, "rate_limited", "Too many requests for this API key",
                           f"The limit is {per_second} requests per second.", headers={"Retry-After": "1"})


def operator_only(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if not connection.scope["state"]["principal"].is_operator:
        raise ProblemError(403, "forbidden", "This endpoint is for the alliance operator")


def brand_only(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if connection.scope["state"]["principal"].is_operator:
        raise ProblemError(403, "forbidden", "This endpoint is for brands; use a brand key")


def current_principal(connection: ASGIConnection) -> Principal:
    return connection.scope["state"]["principal"]


def caller_transaction(request: Request, work: Callable[[AsyncSession], Awaitable[T]]) -> Awaitable[T]:
    """The request's unit of work, in one transaction committed before the answer: scoped to the brand of the
    caller's key (alliance.db.tenancy), unscoped for the operator."""
    return in_tenant_transaction(request.app.state.db.sessions, current_principal(request).tenant_id, work)


IDEMPOTENCY_KEY_MAX = 255


def idempotency_key(connection: ASGIConnection) -> str:
    """Every value-moving request names itself; a retry with the same key gets the first answer."""
    key = connection.headers.get("idempotency-key", "")
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise ProblemError(400, "idempotency_key_required", "An Idempotency-Key header is required",
                           f"Send a unique key of 1 to {IDEMPOTENCY_KEY_MAX} printable characters; reuse it "
                           "only to retry the same request.")
    return key
