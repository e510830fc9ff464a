"""Alembic environment: async, on the configured database; imports every domain's models."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

import alliance.auth.models  # noqa: F401  every domain's models register on the shared metadata
import alliance.ledger.models  # noqa: F401
import alliance.webhooks.models  # noqa: F401
import alliance.worker.outbox  # noqa: F401
import exchange.conversions.models  # noqa: F401
import exchange.identities.models  # noqa: F401
import exchange.membership.models  # noqa: F401
import exchange.rates.models  # noqa: F401
import exchange.signing.models  # noqa: F401
import settlement.models  # noqa: F401
import tenants.models  # noqa: F401
from alliance.db import metadata, sqlalchemy_url
from alliance.resources import database_url_for_tools

target_metadata = metadata


def run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    url = context.config.attributes.get("database_url") or database_url_for_tools()
    engine = create_async_engine(sqlalchemy_url(url))
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported: the ledger functions are plain SQL files")
asyncio.run(run_online())
