"""The transaction boundary: one transaction per unit of work, committed here, retried on transient failures.

Services never commit. Whoever owns the unit of work (a request, an actor, a CLI command) calls
`run_in_transaction`, which commits before returning and re-runs the whole unit when PostgreSQL reports a
serialization failure or a deadlock, so callers never see either.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")

# serialization_failure, deadlock_detected
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
MAX_ATTEMPTS = 8


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, whether it came through SQLAlchemy or straight from asyncpg."""
    if isinstance(exc, DBAPIError):
        exc = exc.orig.__cause__ or exc.orig  # the asyncpg error behind SQLAlchemy's adapter
    return getattr(exc, "sqlstate", None)


def is_transient(exc: BaseException) -> bool:
    return sqlstate_of(exc) in TRANSIENT_SQLSTATES


async def backoff(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, 0.002 * 2**attempt))


async def run_in_transaction(
    sessions: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    for attempt in range(MAX_ATTEMPTS):
        async with sessions() as session:
            try:
                result = await work(session)
                await session.commit()
                return result
            except (DBAPIError, asyncpg.PostgresError) as exc:
                await session.rollback()
                if not is_transient(exc) or attempt == MAX_ATTEMPTS - 1:
                    raise
        await backoff(attempt)
    raise AssertionError("unreachable")


async def retry_transient(conn: asyncpg.Connection, statement: Callable[[], Awaitable[T]]) -> T:
    """Runs one atomic statement on `conn`. Outside a transaction the statement is its own, so a serialization
    failure or a deadlock undid all of it and it is re-run; inside the caller's transaction it is the caller's to
    re-run (run_in_transaction does)."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return await statement()
        except asyncpg.PostgresError as exc:
            if conn.is_in_transaction() or not is_transient(exc) or attempt == MAX_ATTEMPTS - 1:
                raise
        await backoff(attempt)
    raise AssertionError("unreachable")


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under a session, inside the session's transaction (for the hot paths)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    if not raw.driver_connection.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN only with its own first statement: without this, statements sent
        # straight to the driver would each commit on their own, outside the session's transaction.
        await connection.exec_driver_sql("SELECT 1")
    return raw.driver_connection
