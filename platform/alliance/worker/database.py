"""The database of a worker process: opened on first use, on the worker's event loop (asyncpg connections
belong to the loop that opened them), and disposed of when the worker shuts down."""

from __future__ import annotations

from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import Middleware

from alliance.db import Database
from alliance.resources import resolve_backing_services

_database: Database | None = None


def worker_database() -> Database:
    global _database
    if _database is None:
        url = resolve_backing_services().database_url
        _database = Database.connect(url, application_name="alliance-worker")
    return _database


class WorkerDatabase(Middleware):
    """Closes the worker's database at shutdown, so a worker started later in this process opens a new one."""

    def after_worker_shutdown(self, broker, worker) -> None:
        global _database
        if _database is not None:
            database, _database = _database, None
            get_event_loop_thread().run_coroutine(database.dispose())
