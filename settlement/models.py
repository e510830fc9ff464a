"""What settlement keeps per window (migrations/versions/0007). Written by its SQL functions and its service;
the brands read their own rows (positions, statements, disputes) and the flows they are party to."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Integer, LargeBinary, Numeric, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from alliance.db import Base
from alliance.db.tenancy import SharedByTwoTenants, TenantScoped

Money = Numeric(38, 12)


class Flow(SharedByTwoTenants, Base):
    """What a window's conversions moved from one brand (tenant_id) to another (counterparty)."""

    __tablename__ = "settlement_flows"

    window_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant_id: Mapped[int] = mapped_column("source_tenant_id", BigInteger, primary_key=True)
    counterparty_tenant_id: Mapped[int] = mapped_column("target_tenant_id", BigInteger, primary_key=True)
    conversions: Mapped[int] = mapped_column(BigInteger)
    source_points: Mapped[int] = mapped_column(BigInteger)
    target_points: Mapped[int] = mapped_column(BigInteger)
    gross: Mapped[Decimal] = mapped_column(Money)
    fees: Mapped[Decimal] = mapped_column(Money)
    net: Mapped[Decimal] = mapped_column(Money)


class Adjustment(SharedByTwoTenants, Base):
    """A correction landing in a window: the brand (tenant_id) receives `amount` from the counterparty (None: the
    operator)."""

    __tablename__ = "settlement_adjustments"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    window_id: Mapped[int] = mapped_column(BigInteger)
    counterparty_tenant_id: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(Text)
    dispute_id: Mapped[int | None] = mapped_column(BigInteger)
    from_window_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Position(TenantScoped, Base):
    __tablename__ = "settlement_positions"

    window_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    paid_out: Mapped[Decimal] = mapped_column(Money)
    fees: Mapped[Decimal] = mapped_column(Money)
    received: Mapped[Decimal] = mapped_column(Money)
    adjustments: Mapped[Decimal] = mapped_column(Money)
    net: Mapped[Decimal] = mapped_column(Money)
    net_fen: Mapped[int] = mapped_column(BigInteger)
    opening_fen: Mapped[int] = mapped_column(BigInteger)
    bank_ref: Mapped[str | None] = mapped_column(Text)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Run(Base):
    __tablename__ = "settlement_runs"

    window_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    conversions: Mapped[int] = mapped_column(BigInteger)
    fee_income: Mapped[Decimal] = mapped_column(Money)
    fee_income_fen: Mapped[int] = mapped_column(BigInteger)
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Failure(Base):
    __tablename__ = "settlement_failures"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    window_id: Mapped[int] = mapped_column(BigInteger)
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Statement(TenantScoped, Base):
    __tablename__ = "settlement_statements"

    window_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    format: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Dispute(TenantScoped, Base):
    __tablename__ = "settlement_disputes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    window_id: Mapped[int] = mapped_column(BigInteger)
    counterparty_tenant_id: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="open")
    resolution: Mapped[str | None] = mapped_column(Text)
    adjustment_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
