"""Brands' signing keys (Ed25519 public JWKs with validity windows) and the signatures already seen.

Revision ID: 0004
Revises: 0003
"""

from migrations.sql import run_sql_file

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "0004_signing_keys.sql")


def downgrade() -> None:
    raise NotImplementedError("restore from a backup instead of downgrading")
