"""Cutting a statement short at a known point: another transaction holds a row the statement needs, and the
statement's backend is terminated while it waits for that lock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest


async def kill_while_blocked(pool: asyncpg.Pool, *, blocker_sql: str, blocker_args: tuple,
                             work: Callable[[asyncpg.Connection], Awaitable[object]]) -> None:
    """Runs `blocker_sql` in an open transaction, starts `work` on a second connection, waits until that
    connection waits on a lock, terminates its backend, then rolls the blocker back."""
    blocker = await pool.acquire()
    worker = await pool.acquire()
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute(blocker_sql, *blocker_args)
        running = asyncio.create_task(work(worker))
        pid = worker.get_server_pid()
        for _ in range(300):
            if await pool.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid):
                break
            await asyncio.sleep(0.01)
        else:
            running.cancel()
            raise AssertionError("the statement never blocked")
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.PostgresError,
                            ConnectionError)):
            await running
        await transaction.rollback()
    finally:
        await pool.release(blocker)
        await pool.release(worker, timeout=1)
