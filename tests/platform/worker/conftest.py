"""Worker tests run against the real Redis (this xdist worker's database number) and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker

from alliance.settings import get_settings
from alliance.worker.broker import configure_broker


@pytest.fixture(autouse=True)
def broker(redis, redis_url: str) -> RedisBroker:
    """The process's broker, on this worker's Redis database (emptied by the `redis` fixture)."""
    return configure_broker(redis_url)


@pytest.fixture
def worker_environment(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str):
    """A worker opens its database from the environment: point it at this test database."""
    monkeypatch.setenv("ALLIANCE_DATABASE_URL", database_url)
    monkeypatch.setenv("ALLIANCE_REDIS_URL", redis_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def run_worker(broker: RedisBroker):
    """Starts a real dramatiq worker in this process (its own threads and event loop) on the given queues,
    stopped when the block ends."""

    @contextlib.asynccontextmanager
    async def running(*queues: str) -> AsyncIterator[Worker]:
        worker = Worker(broker, queues=set(queues), worker_threads=1, worker_timeout=50)
        worker.start()
        try:
            yield worker
        finally:
            await asyncio.to_thread(worker.stop)

    return running


@pytest.fixture
def queue_length(redis) -> Callable[[str], Awaitable[int]]:
    """How many messages wait in a dramatiq queue."""

    async def length(queue_name: str) -> int:
        return await redis.llen(f"dramatiq:{queue_name}")

    return length


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    """Polls `read()` until it returns `expected`; fails after a timeout."""

    async def poll(read: Callable[[], Awaitable[object]], expected: object, *, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (value := await read()) != expected:
            assert time.monotonic() < deadline, f"still {value!r}, expected {expected!r}"
            await asyncio.sleep(0.02)

    return poll
