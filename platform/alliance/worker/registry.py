"""What a worker process loads: `dramatiq alliance.worker.registry:configure_worker` configures the broker
from the environment and declares every task, so the worker consumes every task queue."""

from __future__ import annotations

from alliance.resources import resolve_backing_services
from alliance.worker.broker import configure_broker
from alliance.worker.tasks import declare_tasks

# Every module that defines tasks or outbox subscribers.
TASK_MODULES = (
    "alliance.worker.outbox",
    "alliance.ledger.tasks",
    "alliance.webhooks.tasks",
    "exchange.conversions.tasks",
    "exchange.signing.tasks",
    "settlement.tasks",
)


def configure_worker() -> None:
    configure_broker(resolve_backing_services().redis_url)
    declare_tasks(TASK_MODULES)
