"""The outbox relay: in order per aggregate, at least once, failures holding back only their aggregate, safe
with several relays at once."""

import asyncio
import contextvars
import random
from collections import Counter
from datetime import timedelta
from uuid import uuid4

import pytest
from sqlalchemy import func, update

from alliance.worker.outbox import OutboxEvent, add_event, outbox_events, relay_batch, retry_delay, subscribe


@pytest.fixture
def event_type() -> str:
    """Handlers stay subscribed for the whole session: each test has event types of its own."""
    return f"test.{uuid4().hex}"


async def add_events(db, tenant_id: int, event_type: str, aggregates: list[str]) -> list[int]:
    """One event per item of `aggregates`, in that order, numbered per aggregate (payload n)."""
    numbers: Counter[str] = Counter()
    async with db.sessions() as session:
        ids = []
        for aggregate_id in aggregates:
            ids.append(await add_event(
                session, tenant_id=tenant_id, aggregate_type="test", aggregate_id=aggregate_id,
                event_type=event_type, payload={"n": numbers[aggregate_id]},
            ))
            numbers[aggregate_id] += 1
        await session.commit()
    return ids


async def relay_until_idle(db, limit: int = 100) -> None:
    while True:
        async with db.sessions() as session:
            claimed = await relay_batch(session, limit)
            await session.commit()
        if not claimed:
            return


async def count(pool, event_type: str) -> int:
    return await pool.fetchval("SELECT count(*) FROM outbox_events WHERE event_type = $1", event_type)


async def pending(pool, event_type: str) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM outbox_events WHERE event_type = $1 AND published_at IS NULL", event_type
    )


def per_aggregate(delivered: list[OutboxEvent]) -> dict[str, list[int]]:
    order: dict[str, list[int]] = {}
    for event in delivered:
        order.setdefault(event.aggregate_id, []).append(event.payload["n"])
    return order


async def test_events_of_an_aggregate_are_delivered_in_order(db, pool, tenant_id, event_type):
    delivered: list[OutboxEvent] = []

    @subscribe(event_type)
    async def record(session, event: OutboxEvent) -> None:
        delivered.append(event)

    await add_events(db, tenant_id, event_type, ["a", "b", "a", "a", "b", "c", "a"])
    await relay_until_idle(db, limit=2)
    assert per_aggregate(delivered) == {"a": [0, 1, 2, 3], "b": [0, 1], "c": [0]}
    assert {e.tenant_id for e in delivered} == {tenant_id}
    assert await pending(pool, event_type) == 0


async def test_a_failing_event_is_retried_later_and_holds_back_only_its_aggregate(
    db, pool, tenant_id, event_type
):
    delivered: list[OutboxEvent] = []
    fail_once = {"a": 1}

    @subscribe(event_type)
    async def flaky(session, event: OutboxEvent) -> None:
        await add_event(  # a write of the handler's, undone with its failure
            session, tenant_id=tenant_id, aggregate_type="test", aggregate_id=event.id,
            event_type=f"{event_type}.handled", payload={},
        )
        if fail_once.get(event.aggregate_id):
            fail_once[event.aggregate_id] -= 1
            raise RuntimeError("endpoint down")
        delivered.append(event)

    ids = await add_events(db, tenant_id, event_type, ["a", "b", "a", "b"])
    await relay_until_idle(db)
    assert per_aggregate(delivered) == {"b": [0, 1]}
    failed = await pool.fetchrow(
        """SELECT attempts, last_error, published_at, next_attempt_at - now() AS wait
           FROM outbox_events WHERE id = $1""", ids[0],
    )
    assert failed["attempts"] == 1 and failed["published_at"] is None
    assert failed["last_error"] == "RuntimeError: endpoint down"
    assert timedelta(0) < failed["wait"] <= retry_delay(1)
    assert await pending(pool, event_type) == 2
    assert await count(pool, f"{event_type}.handled") == 2

    # Later: the event is due again.
    async with db.sessions() as session:
        await session.execute(
            update(outbox_events).where(outbox_events.c.id == ids[0]).values(next_attempt_at=func.now())
        )
        await session.commit()
    await relay_until_idle(db)
    assert per_aggregate(delivered) == {"b": [0, 1], "a": [0, 1]}
    assert await pending(pool, event_type) == 0
    assert await count(pool, f"{event_type}.handled") == 4


async def test_concurrent_relays_deliver_each_event_once_and_in_order(db, pool, tenant_id, event_type):
    relay_name: contextvars.ContextVar[str] = contextvars.ContextVar("relay")
    delivered: list[OutboxEvent] = []
    relays: Counter[str] = Counter()

    pause = random.Random(7)

    @subscribe(event_type)
    async def slow(session, event: OutboxEvent) -> None:
        # Holds the claim for a while, so the other relay runs meanwhile; counted once done.
        await asyncio.sleep(pause.uniform(0, 0.004))
        delivered.append(event)
        relays[relay_name.get()] += 1

    aggregates = [f"agg-{i % 3}" for i in range(45)]
    pause.shuffle(aggregates)
    ids = await add_events(db, tenant_id, event_type, aggregates)

    async def relay(name: str) -> None:
        relay_name.set(name)
        while await pending(pool, event_type):
            async with db.sessions() as session:
                await relay_batch(session, 2)
                await session.commit()

    await asyncio.gather(relay("one"), relay("two"))
    assert Counter(e.id for e in delivered) == Counter(ids)  # each exactly once
    assert per_aggregate(delivered) == {f"agg-{i}": list(range(15)) for i in range(3)}
    assert set(relays) == {"one", "two"}  # both really took part


async def test_effects_rolled_back_with_the_relay_transaction_are_delivered_again(
    db, pool, tenant_id, event_type
):
    calls = Counter()

    @subscribe(event_type)
    async def acknowledge(session, event: OutboxEvent) -> None:
        calls[event.id] += 1
        await add_event(
            session, tenant_id=tenant_id, aggregate_type="test", aggregate_id=event.id,
            event_type=f"{event_type}.ack", payload={"of": event.id},
        )

    [event_id] = await add_events(db, tenant_id, event_type, ["a"])
    async with db.sessions() as session:
        assert await relay_batch(session, 100) >= 1
        await session.rollback()  # the relay dies before committing
    assert await pending(pool, event_type) == 1
    assert await count(pool, f"{event_type}.ack") == 0

    await relay_until_idle(db)
    assert calls[event_id] == 2
    assert await pending(pool, event_type) == 0
    assert await count(pool, f"{event_type}.ack") == 1


def test_retry_delay_doubles_up_to_a_cap():
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert retry_delay(40) == retry_delay(1000) == timedelta(hours=1)
