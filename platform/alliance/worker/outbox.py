"""The transactional outbox: events written in the same transaction as the change they announce, then
relayed to their subscribers by a worker.

Guarantees: every event reaches every handler subscribed to its type at least once (a handler's effects
commit with the event's `published_at`, so a crash before that commit redelivers), and the events of one
aggregate (aggregate_type + aggregate_id) are handled one after the other in id order, however many relays
run at once. A failing event is retried with exponential backoff and holds back only its own aggregate.

Id order is commit order for one aggregate as long as its writers serialize on it (the ledger writes an
account's events under that account's row lock); events of unrelated writers may interleave.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    Select,
    Table,
    Text,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.db import metadata
from alliance.settings import get_settings
from alliance.worker.tasks import enqueue_after_commit, task

log = structlog.get_logger(__name__)

outbox_events = Table(
    "outbox_events", metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("tenant_id", BigInteger),
    Column("aggregate_type", Text, nullable=False),
    Column("aggregate_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text),
)
Index(
    "ix_outbox_events_pending",
    outbox_events.c.aggregate_type, outbox_events.c.aggregate_id, outbox_events.c.id,
    postgresql_where=outbox_events.c.published_at.is_(None),
)
Index(
    "ix_outbox_events_due", outbox_events.c.next_attempt_at, outbox_events.c.id,
    postgresql_where=outbox_events.c.published_at.is_(None),
)

RETRY_BASE = timedelta(seconds=1)
RETRY_CAP = timedelta(hours=1)
LAST_ERROR_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    tenant_id: int | None
    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int  # failed deliveries so far


_EVENT_COLUMNS = [outbox_events.c[f.name] for f in fields(OutboxEvent)]

Handler = Callable[[AsyncSession, OutboxEvent], Awaitable[None]]
_handlers: dict[str, list[Handler]] = defaultdict(list)


def subscribe(event_type: str) -> Callable[[Handler], Handler]:
    """Registers `async def handler(session, event)` for every event of `event_type`. It runs inside the
    relay's transaction, so what it writes commits with the event's delivery, or not at all."""

    def register(handler: Handler) -> Handler:
        _handlers[event_type].append(handler)
        return handler

    return register


async def add_event(
    session: AsyncSession, *, tenant_id: int | None, aggregate_type: str, aggregate_id: str | int,
    event_type: str, payload: dict[str, Any],
) -> int:
    """Writes an event in the caller's transaction and has the relay run once that commits."""
    event_id = await session.scalar(
        insert(outbox_events)
        .values(tenant_id=tenant_id, aggregate_type=aggregate_type, aggregate_id=str(aggregate_id),
                event_type=event_type, payload=payload)
        .returning(outbox_events.c.id)
    )
    enqueue_after_commit(session, relay_outbox)
    return event_id


_relay_pending = False
RELAY_SOON_DELAY_SECONDS = 0.05


def relay_soon() -> None:
    """Has the relay run shortly, for events a hot path has just committed without a session (one SQL statement on
    its own). Calls within the short delay share one message: each event committed before the message is sent is
    relayed by it; one committed after asks for another."""
    global _relay_pending
    if _relay_pending:
        return
    _relay_pending = True

    def send() -> None:
        global _relay_pending
        _relay_pending = False
        try:
            relay_outbox.send()
        except Exception:
            # Committed already: the scheduler's periodic relay is the safety net.
            log.exception("outbox.relay_soon_failed")

    asyncio.get_running_loop().call_later(RELAY_SOON_DELAY_SECONDS, send)


def _claim_heads(limit: int) -> Select:
    """Due events with no earlier undelivered event of their aggregate, locked. An event another relay holds
    is skipped, and its successors are not heads until it is delivered, so no two relays ever handle one
    aggregate at once."""
    event, earlier = outbox_events, outbox_events.alias("earlier")
    return (
        select(*_EVENT_COLUMNS)
        .where(
            event.c.published_at.is_(None),
            event.c.next_attempt_at <= func.now(),
            ~exists().where(
                earlier.c.published_at.is_(None),
                earlier.c.aggregate_type == event.c.aggregate_type,
                earlier.c.aggregate_id == event.c.aggregate_id,
                earlier.c.id < event.c.id,
            ),
        )
        .order_by(event.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=event)
    )


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure in a row."""
    return min(RETRY_CAP, RETRY_BASE * 2 ** min(attempts - 1, 32))


async def relay_batch(session: AsyncSession, limit: int) -> int:
    """Delivers up to `limit` events in the session's transaction; returns how many were claimed (delivered
    or failed). The caller commits."""
    rows = (await session.execute(_claim_heads(limit))).mappings().all()
    delivered: list[int] = []
    for row in rows:
        event = OutboxEvent(**row)
        try:
            # A savepoint per event: a failing handler undoes its own writes, not the other events'.
            async with session.begin_nested():
                for handler in _handlers.get(event.event_type, ()):
                    await handler(session, event)
        except Exception as exc:
            await _record_failure(session, event, exc)
        else:
            delivered.append(event.id)
    if delivered:
        await session.execute(
            update(outbox_events).where(outbox_events.c.id.in_(delivered)).values(published_at=func.now())
        )
    return len(rows)


async def _record_failure(session: AsyncSession, event: OutboxEvent, exc: Exception) -> None:
    attempts = event.attempts + 1
    log.warning("outbox.delivery_failed", event_id=event.id, event_type=event.event_type, attempts=attempts,
                exc_info=exc)
    await session.execute(
        update(outbox_events)
        .where(outbox_events.c.id == event.id)
        .values(
            attempts=attempts,
            last_error=f"{type(exc).__name__}: {exc}"[:LAST_ERROR_LENGTH],
            next_attempt_at=func.now() + retry_delay(attempts),
        )
    )


@task(queue_name="outbox")
async def relay_outbox(session: AsyncSession) -> int:
    """Relays every due event; each batch commits on its own, so a backlog never becomes one long
    transaction holding its locks. Returns how many events were claimed."""
    relayed = 0
    while claimed := await relay_batch(session, get_settings().outbox_batch_size):
        await session.commit()
        relayed += claimed
    return relayed
