"""Periodic jobs: each schedule's slots (every N seconds, or daily at a local time) are enqueued as task
messages by exactly one of however many scheduler processes run.

- Leadership: a Redis key set with NX and a lease (PX), renewed by its holder each tick. Renewal and release
  compare the holder's token in a Lua script, so a leader whose lease lapsed never extends or deletes the
  lock of the leader that followed it.
- Exactly once per slot: before enqueuing, the leader claims the slot's own key with SET NX, so even two
  leaders overlapping for a moment (a lapsed lease, a paused process) enqueue a slot once.
- Only the latest slot is ever enqueued: after downtime a job is made up once, not once per missed slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
import structlog

from alliance.ledger.tasks import expire_holds, expire_points
from alliance.settings import get_settings
from alliance.webhooks.tasks import send_due_retries
from alliance.worker.broker import configure_broker
from alliance.worker.outbox import relay_outbox
from alliance.worker.tasks import Task

log = structlog.get_logger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
SLOT_KEY_MIN_TTL = timedelta(minutes=1)

# Extends / deletes the lock only while it still holds this scheduler's token.
RENEW_LEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE_LEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Schedule:
    """Run `task` (with no arguments) every `every`, or daily at `daily_at` (a wall-clock time in
    `time_zone`, the alliance's business time zone unless given)."""

    name: str
    task: Task[Any]
    every: timedelta | None = None
    daily_at: time | None = None
    time_zone: str = field(default_factory=lambda: get_settings().time_zone)

    def __post_init__(self) -> None:
        if (self.every is None) == (self.daily_at is None):
            raise ValueError(f"schedule {self.name!r}: give exactly one of every and daily_at")
        if self.every is not None and self.every < timedelta(milliseconds=1):
            raise ValueError(f"schedule {self.name!r}: every must be at least a millisecond")

    @property
    def period(self) -> timedelta:
        return self.every or timedelta(days=1)

    def latest_slot(self, now: datetime) -> datetime:
        """When the most recent slot at or before `now` began."""
        if self.every is not None:
            elapsed = (now - EPOCH) // MICROSECOND
            return EPOCH + (elapsed - elapsed % (self.every // MICROSECOND)) * MICROSECOND
        zone = ZoneInfo(self.time_zone)
        day = now.astimezone(zone).date()
        slot = datetime.combine(day, self.daily_at, tzinfo=zone)
        return slot if slot <= now else datetime.combine(day - timedelta(days=1), self.daily_at, tzinfo=zone)


DEFAULT_SCHEDULES = [
    # A safety net: the relay is normally enqueued right after the commits that write events.
    Schedule("relay_outbox", relay_outbox, every=timedelta(seconds=10)),
    Schedule("expire_points", expire_points, every=timedelta(seconds=60)),
    Schedule("expire_holds", expire_holds, every=timedelta(seconds=60)),
    # Webhook retries: a failed delivery is due again after its backoff; the sweep sends it.
    Schedule("webhook_retries", send_due_retries, every=timedelta(seconds=10)),
]


class Scheduler:
    def __init__(
        self, redis_url: str, schedules: Iterable[Schedule], *,
        lease: timedelta = timedelta(seconds=15), tick: timedelta = timedelta(seconds=1),
        key_prefix: str = "alliance:scheduler",
    ) -> None:
        self.schedules = list(schedules)
        names = [s.name for s in self.schedules]
        if len(set(names)) != len(names):
            raise ValueError(f"schedule names must be unique: {names}")
        if tick * 3 > lease:
            raise ValueError("the lease must outlast several ticks, or the leader loses it between renewals")
        self.lease = lease
        self.tick = tick
        self.key_prefix = key_prefix
        self.token = uuid4().hex
        self.is_leader = False
        self._redis = aioredis.Redis.from_url(redis_url)
        self._renew = self._redis.register_script(RENEW_LEASE)
        self._release = self._redis.register_script(RELEASE_LEASE)
        configure_broker(redis_url)

    @property
    def leader_key(self) -> str:
        return f"{self.key_prefix}:leader"

    def slot_key(self, schedule: Schedule, slot: datetime) -> str:
        return f"{self.key_prefix}:slot:{schedule.name}:{slot.isoformat()}"

    async def run(self, stop: asyncio.Event) -> None:
        """Leads or stands by, tick after tick, until `stop` is set; then hands leadership over."""
        try:
            while not stop.is_set():
                try:
                    if await self._lead():
                        await self.enqueue_due(datetime.now(UTC))
                except Exception:
                    # Redis or the broker unreachable for a moment: the next tick tries again.
                    log.exception("scheduler.tick_failed", leader=self.is_leader)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick.total_seconds())
        finally:
            await self._resign()
            await self.aclose()

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def _lead(self) -> bool:
        lease_ms = self.lease // timedelta(milliseconds=1)
        self.is_leader = bool(
            await self._renew(keys=[self.leader_key], args=[self.token, lease_ms])
            or await self._redis.set(self.leader_key, self.token, nx=True, px=lease_ms)
        )
        return self.is_leader

    async def _resign(self) -> None:
        if self.is_leader:
            self.is_leader = False
            with contextlib.suppress(Exception):  # unreachable Redis: the lease runs out by itself
                await self._release(keys=[self.leader_key], args=[self.token])

    async def enqueue_due(self, now: datetime) -> int:
        """Enqueues each schedule's latest slot that no scheduler has enqueued yet; returns how many."""
        enqueued = 0
        for schedule in self.schedules:
            key = self.slot_key(schedule, schedule.latest_slot(now))
            # Kept well after the slot stopped being the latest one, even on a scheduler whose clock lags.
            keep_ms = max(2 * schedule.period, SLOT_KEY_MIN_TTL) // timedelta(milliseconds=1)
            if not await self._redis.set(key, self.token, nx=True, px=keep_ms):
                continue
            try:
                schedule.task.send()
            except Exception:
                await self._redis.delete(key)  # not enqueued after all: let the next tick try the slot again
                raise
            enqueued += 1
        return enqueued
