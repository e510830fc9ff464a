"""Conversions, for reading: they are written only by the SQL functions of migrations/versions/0005. A conversion
is shared by its two brands: both see it, no other brand does (alliance.db.tenancy.SharedByTwoTenants)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, DateTime, LargeBinary, Numeric, Text
from sqlalchemy.orm import Mapped, mapped_column

from alliance.db import Base
from alliance.db.tenancy import SharedByTwoTenants
from exchange.rates.models import Priced


class Conversion(Priced, SharedByTwoTenants, Base):
    """tenant_id: the source brand (whose member's points go out); counterparty_tenant_id: the target brand."""

    __tablename__ = "exchange_conversions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    counterparty_tenant_id: Mapped[int] = mapped_column("target_tenant_id", BigInteger)
    status: Mapped[str] = mapped_column(Text)
    source_member: Mapped[str] = mapped_column(Text)
    source_identity: Mapped[str | None] = mapped_column(Text)
    target_member: Mapped[str] = mapped_column(Text)
    target_identity: Mapped[str] = mapped_column(Text)
    quote_id: Mapped[int | None] = mapped_column(BigInteger)
    gross_value: Mapped[Decimal] = mapped_column(Numeric(38, 12))
    fee_value: Mapped[Decimal] = mapped_column(Numeric(38, 12))
    net_value: Mapped[Decimal] = mapped_column(Numeric(38, 12))
    business_date: Mapped[date] = mapped_column(Date)
    hold_id: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_id: Mapped[int | None] = mapped_column(BigInteger)
    source_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    target_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    commit_kid: Mapped[str | None] = mapped_column(Text)
    commit_signature_digest: Mapped[bytes | None] = mapped_column(LargeBinary)
    abort_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    committed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
