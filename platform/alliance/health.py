"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from litestar import Controller, Response, get
from sqlalchemy import text

from alliance.errors import problem
from alliance.state import AppState


class HealthController(Controller):
    tags = ["health"]
    include_in_schema = True

    @get("/healthz", summary="The process is alive")
    async def alive(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", summary="PostgreSQL and Redis are reachable")
    async def ready(self, state: AppState) -> Response:
        checks = {"postgres": _check_postgres(state), "redis": _check_redis(state)}
        results = await asyncio.gather(*checks.values(), return_exceptions=True)
        report = {name: "ok" if r is True else "unreachable" for name, r in zip(checks, results, strict=True)}
        if all(r is True for r in results):
            return Response({"status": "ok", "checks": report})
        return problem(503, "not_ready", "A backing service is unreachable", extra={"checks": report})


async def _check_postgres(state: AppState) -> bool:
    async with asyncio.timeout(2):
        async with state.db.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    return True


async def _check_redis(state: AppState) -> bool:
    async with asyncio.timeout(2):
        await state.redis.ping()
    return True
