"""The ledger's fast path for transfers (entries of two postings): ledger__apply_transfer.

Revision ID: 0006
Revises: 0005
"""

from migrations.sql import run_sql_file

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "0006_ledger_transfers.sql")


def downgrade() -> None:
    raise NotImplementedError("restore from a backup instead of downgrading")
