"""Rate cards (immutable; a change is a new version) and quotes. Quotes are written by the SQL function
exchange_quote (migrations/versions/0005), which prices them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CHAR, BigInteger, DateTime, Identity, Integer, Numeric, func
from sqlalchemy.orm import Mapped, mapped_column

from alliance.db import Base
from alliance.db.tenancy import TenantScoped


class RateCard(Base):
    __tablename__ = "exchange_rate_cards"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    source_tenant_id: Mapped[int] = mapped_column(BigInteger)
    target_tenant_id: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer)
    effective_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rate: Mapped[Decimal | None] = mapped_column(Numeric(30, 12))  # None: derived from the point values
    fee_bps: Mapped[int] = mapped_column(Integer)
    min_amount: Mapped[int] = mapped_column(BigInteger)
    max_amount: Mapped[int] = mapped_column(BigInteger)
    member_daily_limit: Mapped[int | None] = mapped_column(BigInteger)
    pair_daily_cap: Mapped[int | None] = mapped_column(BigInteger)
    quote_ttl_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Priced:
    """A price, as a quote locks it and a conversion snapshots it: the points, the rate and both point values."""

    rate_card_id: Mapped[int] = mapped_column(BigInteger)
    source_amount: Mapped[int] = mapped_column(BigInteger)
    fee_amount: Mapped[int] = mapped_column(BigInteger)  # source points
    target_amount: Mapped[int] = mapped_column(BigInteger)
    rate: Mapped[Decimal] = mapped_column(Numeric(30, 12))
    remainder: Mapped[Decimal] = mapped_column(Numeric(30, 12))  # the fraction of a target point not issued
    source_point_value: Mapped[Decimal] = mapped_column(Numeric(30, 12))
    target_point_value: Mapped[Decimal] = mapped_column(Numeric(30, 12))
    currency: Mapped[str] = mapped_column(CHAR(3))


class Quote(Priced, TenantScoped, Base):
    """tenant_id: the source brand, the only one that may use it."""

    __tablename__ = "exchange_quotes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    target_tenant_id: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    conversion_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
