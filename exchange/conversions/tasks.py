"""Conversion jobs for the worker: reservations past their deadline expire (both brands are told)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from alliance.ledger.tasks import expire_until_done
from alliance.worker.tasks import task
from exchange.conversions import service


@task()
async def expire_conversions(session: AsyncSession, *, as_of: str | None = None) -> int:
    """Expires the reservations due at `as_of` (ISO-8601; default: the database's now): their points are released,
    their usage and reserved capacity given back. Returns how many."""
    return await expire_until_done(session, service.expire_due, as_of)
