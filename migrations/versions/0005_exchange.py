"""The exchange: participants and their net debit positions, pairs, rate cards, alliance identities, quotes and
two-phase conversions between brands.

Revision ID: 0005
Revises: 0004
"""

from migrations.sql import run_sql_file

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "0005_exchange.sql")


def downgrade() -> None:
    raise NotImplementedError("restore from a backup instead of downgrading")
