"""The process's dramatiq broker: Redis, with async actors run on one event loop thread per worker process."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

from alliance.resources import resolve_backing_services
from alliance.worker.database import WorkerDatabase

_broker: RedisBroker | None = None
_broker_url: str | None = None


def configure_broker(redis_url: str) -> RedisBroker:
    """Makes a Redis broker on `redis_url` the global dramatiq broker; again with the same URL, returns it."""
    global _broker, _broker_url
    if _broker is not None and _broker_url == redis_url:
        return _broker
    broker = RedisBroker(url=redis_url)
    broker.add_middleware(AsyncIO())
    # After AsyncIO, so that at shutdown it runs first, while the event loop is still there.
    broker.add_middleware(WorkerDatabase())
    dramatiq.set_broker(broker)
    _broker, _broker_url = broker, redis_url
    return broker


def current_broker() -> RedisBroker:
    """The configured broker, else one on the configured (or embedded) Redis."""
    return _broker or configure_broker(resolve_backing_services().redis_url)
