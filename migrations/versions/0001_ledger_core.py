"""The double-entry ledger core and the transactional outbox.

Revision ID: 0001
Revises:
"""

from migrations.sql import run_sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "0001_ledger_core.sql")


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only; restore from a backup instead of downgrading")
