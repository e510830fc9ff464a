"""Database access: the engine, sessions, the transaction boundary with retries, and the base model."""

from alliance.db.base import Base, metadata
from alliance.db.engine import Database, asyncpg_dsn, sqlalchemy_url
from alliance.db.transaction import TRANSIENT_SQLSTATES, driver_connection, retry_transient, run_in_transaction

__all__ = [
    "Base",
    "Database",
    "TRANSIENT_SQLSTATES",
    "asyncpg_dsn",
    "driver_connection",
    "retry_transient",
    "metadata",
    "run_in_transaction",
    "sqlalchemy_url",
]
