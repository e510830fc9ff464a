"""Tasks: async functions of a session that run in the caller's transaction when awaited, or on a worker
when sent.

    @task(queue_name="default")
    async def recompute(session: AsyncSession, *, tenant_id: int) -> None: ...

    await recompute(session, tenant_id=7)                # here, in the caller's transaction
    recompute.send(tenant_id=7)                          # on a worker, in a transaction of its own
    enqueue_after_commit(session, recompute, tenant_id=7)  # on a worker, once `session` has committed

On a worker the task runs inside `run_in_transaction`: committed at the end, re-run on serialization
failures and deadlocks. Keyword arguments travel as JSON.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any, Generic, TypeVar

import dramatiq
import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from alliance.db import run_in_transaction
from alliance.worker.broker import current_broker
from alliance.worker.database import worker_database

R = TypeVar("R")
log = structlog.get_logger(__name__)

_tasks: dict[str, Task[Any]] = {}


class Task(Generic[R]):
    def __init__(
        self, fn: Callable[..., Awaitable[R]], *, queue_name: str, max_retries: int, time_limit: timedelta
    ) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        # Module-qualified, so that tasks of the same name in two modules never collide on the broker.
        self.name = f"{fn.__module__}.{fn.__qualname__}"
        self.queue_name = queue_name
        self.options = {"max_retries": max_retries, "time_limit": time_limit // timedelta(milliseconds=1)}
        self._actor: dramatiq.Actor | None = None

    async def __call__(self, session: AsyncSession, **kwargs: Any) -> R:
        return await self.fn(session, **kwargs)

    def actor(self) -> dramatiq.Actor:
        """The dramatiq actor of this task on the process's broker, declared there on first use."""
        broker = current_broker()
        if self._actor is None or self._actor.broker is not broker:
            self._actor = dramatiq.Actor(
                self._run_on_worker, broker=broker, actor_name=self.name, queue_name=self.queue_name,
                priority=0, options=self.options,
            )
        return self._actor

    def send(self, **kwargs: Any) -> dramatiq.Message:
        return self.actor().send(**kwargs)

    async def _run_on_worker(self, **kwargs: Any) -> None:
        # What the task returns is for callers that await it; a worker keeps no results.
        await run_in_transaction(worker_database().sessions, functools.partial(self.fn, **kwargs))

    def __repr__(self) -> str:
        return f"Task({self.name}, queue_name={self.queue_name!r})"


def task(
    *, queue_name: str = "default", max_retries: int = 5, time_limit: timedelta = timedelta(minutes=10)
) -> Callable[[Callable[..., Awaitable[R]]], Task[R]]:
    def decorate(fn: Callable[..., Awaitable[R]]) -> Task[R]:
        declared = Task(fn, queue_name=queue_name, max_retries=max_retries, time_limit=time_limit)
        if declared.name in _tasks:
            raise ValueError(f"a task named {declared.name!r} is already declared")
        _tasks[declared.name] = declared
        return declared

    return decorate


def declare_tasks(modules: Iterable[str]) -> None:
    """Imports the modules that define tasks and declares every task on the broker, so a worker consumes
    their queues."""
    for module in modules:
        importlib.import_module(module)
    for declared in _tasks.values():
        declared.actor()


# --- sending after commit -------------------------------------------------------------------------------

_PENDING = "alliance.worker.after_commit"


def enqueue_after_commit(session: AsyncSession, task: Task[Any], **kwargs: Any) -> None:
    """Sends `task` once the session's transaction commits, never if it (or the savepoint it was asked for
    in) rolls back. The same task with the same arguments is sent once per transaction."""
    sync_session = session.sync_session
    pending = sync_session.info.get(_PENDING)
    if pending is None:
        pending = sync_session.info[_PENDING] = []
        event.listen(sync_session, "after_commit", _after_commit)
        event.listen(sync_session, "after_transaction_end", _after_transaction_end)
    # Tagged with the savepoint it belongs to (None: the transaction itself).
    item = [sync_session.get_nested_transaction(), task, kwargs]
    if not any(t is task and k == kwargs for _, t, k in pending):
        pending.append(item)


def _after_commit(session: Session) -> None:
    pending = session.info[_PENDING]
    released = session.get_nested_transaction()
    if released is not None:
        # A savepoint released, not a commit: what it asked for now belongs to the enclosing level.
        enclosing = released.parent if released.parent is not None and released.parent.nested else None
        for item in pending:
            if item[0] is released:
                item[0] = enclosing
        return
    sending, pending[:] = list(pending), []
    for _, task, kwargs in sending:
        try:
            task.send(**kwargs)
        except Exception:
            # The transaction is committed: failing now would report a committed change as failed.
            # The scheduler's periodic jobs (the outbox relay) are the safety net.
            log.exception("task.enqueue_after_commit_failed", task=task.name)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    pending = session.info[_PENDING]
    if transaction.nested:
        # Still tagged with this savepoint: it was rolled back (a release re-tagged its items).
        pending[:] = [item for item in pending if item[0] is not transaction]
    elif transaction.parent is None:
        pending.clear()
