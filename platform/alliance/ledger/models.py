"""The ledger's tables, declared for reads and for Alembic; they are created by migrations/versions/0001.

Writes go through the SQL functions of that migration (one round trip each), never through these."""

from sqlalchemy import CHAR, BigInteger, Boolean, Column, DateTime, LargeBinary, Numeric, SmallInteger, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from alliance.db import metadata


def _id() -> Column:
    return Column("id", BigInteger, primary_key=True)


def _tenant() -> Column:
    return Column("tenant_id", BigInteger, primary_key=True)


currencies = Table(
    "ledger_currencies", metadata, _tenant(), _id(),
    Column("code", Text, nullable=False),
    Column("system_shards", SmallInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

currency_values = Table(
    "ledger_currency_values", metadata, _tenant(),
    Column("currency_id", BigInteger, primary_key=True),
    Column("effective_at", DateTime(timezone=True), primary_key=True),
    Column("value", Numeric(30, 12), nullable=False),
    Column("settlement_currency", CHAR(3), nullable=False),
)

accounts = Table(
    "ledger_accounts", metadata, _tenant(), _id(),
    Column("currency_id", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("shard", SmallInteger, nullable=False),
    Column("non_negative", Boolean, nullable=False),
    Column("balance", BigInteger, nullable=False),
    Column("held", BigInteger, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

entries = Table(
    "ledger_entries", metadata, _tenant(), _id(),
    Column("kind", Text, nullable=False),
    Column("reverses_entry_id", BigInteger),
    Column("idempotency_key", Text),
    Column("metadata", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

postings = Table(
    "ledger_postings", metadata, _tenant(), _id(),
    Column("entry_id", BigInteger, nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("currency_id", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("version_after", BigInteger, nullable=False),
    Column("posted_at", DateTime(timezone=True), nullable=False),
    Column("lots", JSONB),
)

lots = Table(
    "ledger_lots", metadata, _tenant(), _id(),
    Column("account_id", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("remaining", BigInteger, nullable=False),
    Column("credited", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

holds = Table(
    "ledger_holds", metadata, _tenant(), _id(),
    Column("account_id", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("posted_amount", BigInteger),
    Column("entry_id", BigInteger),
    Column("metadata", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
)

idempotency = Table(
    "ledger_idempotency", metadata, _tenant(),
    Column("key", Text, primary_key=True),
    Column("request_hash", LargeBinary, nullable=False),
    Column("outcome", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
