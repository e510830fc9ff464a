"""Webhook endpoints of brands and their deliveries.

Revision ID: 0003
Revises: 0002
"""

from migrations.sql import run_sql_file

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "0003_webhooks.sql")


def downgrade() -> None:
    raise NotImplementedError("restore from a backup instead of downgrading")
