"""Webhook work for the worker: the outbox subscriber that fans events out into deliveries, one attempt at a
delivery, and the sweep that sends the retries that have come due."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from alliance.crypto.data_key import field_cipher
from alliance.settings import get_settings
from alliance.webhooks import EVENT_TYPES, service
from alliance.worker.outbox import OutboxEvent, subscribe
from alliance.worker.tasks import enqueue_after_commit, task

SWEEP_BATCH = 1000


@task(queue_name="webhooks")
async def deliver(session: AsyncSession, *, tenant_id: int, delivery_id: int) -> str | None:
    """One attempt at a delivery, if it is due; returns its status after the attempt, or None when it was not
    due (already sent, or under way elsewhere), so duplicate messages are harmless."""
    attempt = await service.claim_delivery(session, tenant_id, delivery_id)
    if attempt is None:
        return None
    # The claim is kept by committing it, so no transaction (nor its connection) waits on the receiver.
    await session.commit()
    result = await service.send(attempt, field_cipher(get_settings()))
    return await service.record_attempt(session, attempt, result)


@task(queue_name="webhooks")
async def send_due_retries(session: AsyncSession) -> int:
    """Sends every delivery whose next attempt is due (retries, and any whose first send was lost); returns
    how many."""
    due = await service.due_deliveries(session, SWEEP_BATCH)
    for tenant_id, delivery_id in due:
        deliver.send(tenant_id=tenant_id, delivery_id=delivery_id)
    return len(due)


async def fan_out(session: AsyncSession, event: OutboxEvent) -> None:
    """Runs in the relay's transaction: the deliveries commit with the event's relay, then are sent."""
    for tenant_id, delivery_id in await service.fan_out(session, event):
        enqueue_after_commit(session, deliver, tenant_id=tenant_id, delivery_id=delivery_id)


for _event_type in sorted(EVENT_TYPES):
    subscribe(_event_type)(fan_out)
