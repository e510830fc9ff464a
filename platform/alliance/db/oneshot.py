"""One-off units of work for operator commands, outside any running server."""

from __future__ import annotations


def run_db(work):
    """Runs `work(session)` in one committed transaction on the platform's database (embedded unless
    configured), for operator commands."""
    import asyncio

    from alliance.db import Database, run_in_transaction
    from alliance.resources import resolve_backing_services

    async def run():
        database = Database.connect(resolve_backing_services().database_url, pool_size=1)
        try:
            return await run_in_transaction(database.sessions, work)
        finally:
            await database.dispose()

    return asyncio.run(run())
