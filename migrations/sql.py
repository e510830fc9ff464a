"""Runs a migration's companion .sql file through the driver, so PL/pgSQL bodies need no splitting."""

from pathlib import Path

from alembic import op
from sqlalchemy.util import await_only


def run_sql_file(migration_file: str, name: str) -> None:
    script = (Path(migration_file).parent / name).read_text()
    asyncpg_connection = op.get_bind().connection.driver_connection
    # asyncpg's execute() without arguments uses the simple query protocol: many statements at once.
    await_only(asyncpg_connection.execute(script))
