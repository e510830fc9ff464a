"""Signing jobs for the worker: forget the signatures that are past their staleness window."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from alliance.worker.tasks import task
from exchange.signing import service


@task()
async def prune_seen_signatures(session: AsyncSession) -> int:
    """Deletes the record of signatures too old to be accepted anyway (each is refused as stale); returns how
    many. Without it, every signed request would leave a row for ever."""
    return await service.prune_seen_signatures(session)
