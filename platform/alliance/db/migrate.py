"""Alembic, driven from code: upgrade to head, and tell which migrations are pending."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from alliance.db.engine import asyncpg_dsn

ROOT = Path(__file__).resolve().parents[3]


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


async def pending_migrations(database_url: str) -> list[str]:
    """Revisions between the database's current one and head ([] when up to date)."""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        has_table = await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
        current = await connection.fetchval("SELECT version_num FROM alembic_version") if has_table else None
    finally:
        await connection.close()
    return [rev.revision for rev in script.iterate_revisions("head", current)]
