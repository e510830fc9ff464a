"""The task wrapper: awaited in the caller's transaction, run by a real dramatiq worker, sent after commit."""

import asyncpg
import pytest
from dramatiq import Message
from sqlalchemy import text

from alliance.worker.tasks import enqueue_after_commit, task

QUEUE = "wrapper_test"
_failures_left: dict[str, int] = {}


@task(queue_name=QUEUE)
async def mark(session, *, tenant_id: int, label: str) -> str:
    await session.execute(
        text("INSERT INTO worker_test_marks (tenant_id, label) VALUES (:tenant_id, :label)"),
        {"tenant_id": tenant_id, "label": label},
    )
    if _failures_left.get(label, 0) > 0:
        _failures_left[label] -= 1
        raise asyncpg.SerializationError("could not serialize access")  # transient: the unit is re-run
    return label


@pytest.fixture
async def marks(pool):
    """A scratch table the test task writes to, and the labels committed in it for a tenant."""
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS worker_test_marks (tenant_id bigint NOT NULL, label text NOT NULL)"
    )

    async def committed(tenant_id: int) -> list[str]:
        rows = await pool.fetch(
            "SELECT label FROM worker_test_marks WHERE tenant_id = $1 ORDER BY label", tenant_id
        )
        return [r["label"] for r in rows]

    return committed


async def waiting_messages(redis) -> list[Message]:
    return [Message.decode(raw) for raw in await redis.hvals(f"dramatiq:{QUEUE}.msgs")]


async def test_awaited_directly_it_runs_in_the_callers_transaction(db, marks, tenant_id):
    async with db.sessions() as session:
        assert await mark(session, tenant_id=tenant_id, label="direct") == "direct"
        assert await marks(tenant_id) == []
        await session.commit()
    assert await marks(tenant_id) == ["direct"]


async def test_sent_it_runs_on_a_worker_which_commits(
    run_worker, worker_environment, marks, tenant_id, eventually, queue_length
):
    mark.send(tenant_id=tenant_id, label="sent")
    assert await queue_length(QUEUE) == 1
    async with run_worker(QUEUE):
        await eventually(lambda: marks(tenant_id), ["sent"])


async def test_on_a_worker_a_transient_failure_reruns_the_whole_unit(
    run_worker, worker_environment, marks, tenant_id, eventually
):
    _failures_left["flaky"] = 2
    mark.send(tenant_id=tenant_id, label="flaky")
    async with run_worker(QUEUE):
        await eventually(lambda: marks(tenant_id), ["flaky"])
    assert _failures_left["flaky"] == 0
    assert await marks(tenant_id) == ["flaky"]  # the failed attempts' writes were rolled back


async def test_enqueued_after_commit_it_is_sent_once_the_transaction_commits(db, tenant_id, queue_length):
    async with db.sessions() as session:
        enqueue_after_commit(session, mark, tenant_id=tenant_id, label="a")
        enqueue_after_commit(session, mark, tenant_id=tenant_id, label="a")  # the same message: sent once
        enqueue_after_commit(session, mark, tenant_id=tenant_id, label="b")
        await session.execute(text("SELECT 1"))
        assert await queue_length(QUEUE) == 0
        await session.commit()
        assert await queue_length(QUEUE) == 2
        await session.commit()  # a later, empty transaction sends nothing again
    assert await queue_length(QUEUE) == 2


async def test_enqueued_after_commit_nothing_is_sent_when_the_transaction_does_not_commit(
    db, tenant_id, queue_length
):
    async with db.sessions() as session:
        await session.execute(text("SELECT 1"))
        enqueue_after_commit(session, mark, tenant_id=tenant_id, label="rolled back")
        await session.rollback()
        await session.commit()
    async with db.sessions() as session:
        enqueue_after_commit(session, mark, tenant_id=tenant_id, label="closed")
        await session.execute(text("SELECT 1"))
    assert await queue_length(QUEUE) == 0


async def test_enqueued_in_a_savepoint_it_follows_the_savepoint(
    db, redis, run_worker, worker_environment, marks, tenant_id, eventually
):
    async with db.sessions() as session:
        async with session.begin_nested():
            enqueue_after_commit(session, mark, tenant_id=tenant_id, label="released")
        savepoint = await session.begin_nested()
        enqueue_after_commit(session, mark, tenant_id=tenant_id, label="rolled back")
        await savepoint.rollback()
        assert await waiting_messages(redis) == []  # releasing a savepoint is no commit
        await session.commit()
    assert [m.kwargs["label"] for m in await waiting_messages(redis)] == ["released"]
    async with run_worker(QUEUE):
        await eventually(lambda: marks(tenant_id), ["released"])

