"""Conversion jobs for the worker: reservations past their deadline expire (both brands are told)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.db import driver_connection
from alliance.worker.outbox import relay_outbox
from alliance.worker.tasks import enqueue_after_commit, task
from exchange.conversions import service

EXPIRY_BATCH = 500


@task()
async def expire_conversions(session: AsyncSession, *, as_of: str | None = None) -> int:
    """Expires the reservations due at `as_of` (ISO-8601; default: the database's now): their points are released,
    their usage and reserved capacity given back. Returns how many."""
    now = datetime.fromisoformat(as_of) if as_of else await session.scalar(select(func.now()))
    expired = 0
    while batch := await service.expire_due(await driver_connection(session), now, batch=EXPIRY_BATCH):
        expired += batch
        await session.commit()  # each batch on its own: its locks released, its progress kept
    if expired:
        enqueue_after_commit(session, relay_outbox)
    return expired
