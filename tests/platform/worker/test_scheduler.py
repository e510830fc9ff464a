"""The scheduler: one leader among several processes, each slot enqueued exactly once, takeover when the
leader stops."""

import asyncio
from datetime import UTC, datetime, time, timedelta

import pytest

from alliance.worker.scheduler import Schedule, Scheduler
from alliance.worker.tasks import task

QUEUE = "scheduler_test"
EVERY = timedelta(milliseconds=200)


@task(queue_name=QUEUE)
async def beat(session) -> None:
    """Only ever enqueued here; the test counts its messages."""


def scheduler(redis_url: str) -> Scheduler:
    return Scheduler(
        redis_url, [Schedule("beat", beat, every=EVERY)],
        lease=timedelta(milliseconds=600), tick=timedelta(milliseconds=20),
    )


async def enqueued_slots(redis) -> dict[datetime, str]:
    """Each slot claimed, with the token of the scheduler that enqueued it."""
    prefix = "alliance:scheduler:slot:beat:"
    keys = await redis.keys(prefix + "*")
    tokens = await redis.mget(keys) if keys else []
    return {datetime.fromisoformat(k.decode().removeprefix(prefix)): t.decode() for k, t in zip(keys, tokens, strict=True)}


async def test_two_schedulers_enqueue_each_slot_once_and_the_other_takes_over(
    redis, redis_url, queue_length, eventually
):
    schedulers = [scheduler(redis_url), scheduler(redis_url)]
    stops = [asyncio.Event(), asyncio.Event()]
    runs = [asyncio.create_task(s.run(stop)) for s, stop in zip(schedulers, stops, strict=True)]

    async def leaders() -> int:
        return sum(s.is_leader for s in schedulers)

    await eventually(leaders, 1)
    first = next(i for i, s in enumerate(schedulers) if s.is_leader)
    second = 1 - first
    await asyncio.sleep(1.0)
    assert not schedulers[second].is_leader

    stops[first].set()
    await runs[first]

    async def second_leads() -> bool:
        return schedulers[second].is_leader

    await eventually(second_leads, True, timeout=2)
    await asyncio.sleep(0.8)
    stops[second].set()
    await runs[second]

    by_slot = await enqueued_slots(redis)
    slots = sorted(by_slot)
    assert len(slots) >= 8
    assert all(later - earlier == EVERY for earlier, later in zip(slots, slots[1:], strict=False))  # no slot missed
    assert await queue_length(QUEUE) == len(slots)  # none enqueued twice
    # The first leader's slots, then the second's: a clean handover.
    enqueuers = [by_slot[slot] for slot in slots]
    handover = enqueuers.index(schedulers[second].token)
    assert set(enqueuers[:handover]) == {schedulers[first].token}
    assert set(enqueuers[handover:]) == {schedulers[second].token}
    assert await redis.exists("alliance:scheduler:leader") == 0  # released on stop


async def test_overlapping_leaders_enqueue_a_slot_once(redis_url, queue_length):
    a, b = scheduler(redis_url), scheduler(redis_url)
    now = datetime.now(UTC)
    try:
        assert sorted(await asyncio.gather(a.enqueue_due(now), b.enqueue_due(now))) == [0, 1]
        assert await a.enqueue_due(now + EVERY / 2) + await b.enqueue_due(now + EVERY / 2) <= 1
    finally:
        await a.aclose()
        await b.aclose()
    assert await queue_length(QUEUE) in (1, 2)  # now and now + EVERY/2 may fall in one slot or two


async def test_a_stale_leader_neither_renews_nor_releases_its_successors_lock(redis, redis_url, eventually):
    stale = scheduler(redis_url)
    stop = asyncio.Event()
    run = asyncio.create_task(stale.run(stop))

    async def leads() -> bool:
        return stale.is_leader

    await eventually(leads, True)
    # Its lease ran out (a long pause, say) and another scheduler took the lock.
    await redis.set(stale.leader_key, "successor", px=60_000)
    await eventually(leads, False)
    stop.set()
    await run
    assert await redis.get(stale.leader_key) == b"successor"
    assert await redis.pttl(stale.leader_key) > 50_000


def test_slots_are_aligned_periods_or_local_times_of_day():
    def utc(*args: int) -> datetime:
        return datetime(*args, tzinfo=UTC)

    every = Schedule("every", beat, every=timedelta(seconds=10))
    assert every.latest_slot(utc(2025, 1, 1, 12, 0, 9, 999999)) == utc(2025, 1, 1, 12, 0)
    nightly = Schedule("nightly", beat, daily_at=time(2, 0), time_zone="Asia/Shanghai")
    # 01:59 in Shanghai (UTC+8): the latest slot is the day before's 02:00 there.
    assert nightly.latest_slot(utc(2025, 1, 1, 17, 59)) == utc(2024, 12, 31, 18, 0)
    assert nightly.latest_slot(utc(2025, 1, 1, 18, 0)) == utc(2025, 1, 1, 18, 0)
    with pytest.raises(ValueError):
        Schedule("both", beat, every=timedelta(seconds=1), daily_at=time(2, 0))
