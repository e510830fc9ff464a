"""Settlement: closing windows, flows and positions with their checks, statements, payments and disputes.

Revision ID: 0007
Revises: 0006
"""

from migrations.sql import run_sql_file

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "0007_settlement.sql")


def downgrade() -> None:
    raise NotImplementedError("restore from a backup instead of downgrading")
