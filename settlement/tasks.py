"""The nightly settlement: each step commits on its own, so a worker killed half-way leaves every step done or not
done, and the next run takes up where it stopped (every step is idempotent)."""

from __future__ import annotations

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.calendar import business_date
from alliance.crypto.platform_key import platform_signer
from alliance.settings import get_settings
from alliance.worker.outbox import relay_outbox
from alliance.worker.tasks import enqueue_after_commit, task
from exchange.membership.models import Window
from settlement import service
from settlement.models import Statement

log = structlog.get_logger(__name__)


@task(queue_name="settlement")
async def settle(session: AsyncSession) -> dict[str, list[int]]:
    """Closes the open window once its business day is over, computes every closed window not computed yet (oldest
    first, stopping at one whose checks fail), and issues the statements of every computed window lacking them.
    Returns what it did, by step."""
    done: dict[str, list[int]] = {"closed": [], "computed": [], "stated": [], "failed": []}
    closed = await service.close_previous_day(session, business_date())
    if closed is not None:
        done["closed"].append(closed.id)
    await session.commit()
    for window_id in await service.closed_window_ids(session):
        try:
            await service.compute(session, window_id)
        except service.ChecksFailed as failed:
            await session.rollback()
            await service.record_failure(session, failed)
            await session.commit()
            log.error("settlement.checks_failed", window_id=window_id, report=failed.report)
            done["failed"].append(window_id)
            # No later window is computed before this one: its opening position counts this one's.
            break
        await session.commit()
        done["computed"].append(window_id)
    signer = platform_signer(get_settings())
    unstated = select(Window.id).where(Window.computed_at.is_not(None), Window.status != "aborted",
                                       ~Window.id.in_(select(Statement.window_id))).order_by(Window.business_date)
    for window_id in list(await session.scalars(unstated)):
        if await service.issue_statements(session, signer, window_id):
            done["stated"].append(window_id)
        await session.commit()
    enqueue_after_commit(session, relay_outbox)
    return done
