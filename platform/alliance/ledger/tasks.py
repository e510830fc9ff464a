"""Ledger jobs for the worker: expiry of lots and of holds past their deadline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.db import driver_connection
from alliance.ledger import service as ledger
from alliance.worker.outbox import relay_outbox
from alliance.worker.tasks import enqueue_after_commit, task

EXPIRY_BATCH = 500

Expire = Callable[..., Awaitable[int]]


async def expire_until_done(session: AsyncSession, expire: Expire, as_of: str | None) -> int:
    """Runs `expire(conn, now, batch=...)` until nothing is due, one commit per batch; returns how many."""
    # One instant for the whole run, so every batch agrees on what is due.
    now = datetime.fromisoformat(as_of) if as_of else await session.scalar(select(func.now()))
    expired = 0
    while batch := await expire(await driver_connection(session), now, batch=EXPIRY_BATCH):
        expired += batch
        # Each batch commits on its own: its locks are released and its progress kept.
        await session.commit()
    if expired:
        # The SQL wrote points.expired / hold.expired events; deliver them once the last commit is done.
        enqueue_after_commit(session, relay_outbox)
    return expired


@task()
async def expire_points(session: AsyncSession, *, as_of: str | None = None) -> int:
    """Moves what is left of lots due at `as_of` (ISO-8601; default: the database's now) to the expiry
    accounts; returns how many accounts were expired."""
    return await expire_until_done(session, ledger.expire_lots, as_of)


@task()
async def expire_holds(session: AsyncSession, *, as_of: str | None = None) -> int:
    """Releases pending holds due at `as_of` (ISO-8601; default: the database's now); returns how many."""
    return await expire_until_done(session, ledger.expire_holds, as_of)
