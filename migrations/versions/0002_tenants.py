"""Brands (tenants), API keys, members.

Revision ID: 0002
Revises: 0001
"""

from migrations.sql import run_sql_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "0002_tenants.sql")


def downgrade() -> None:
    raise NotImplementedError("restore from a backup instead of downgrading")
