"""Participants, pairs, windows and positions: reference tables of the exchange, shared by all brands and changed
only by the operator (positions by conversions, through the SQL of migrations/versions/0005)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Identity, Numeric, SmallInteger, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from alliance.db import Base


class Participant(Base):
    __tablename__ = "exchange_participants"

    tenant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tenants.id"), primary_key=True)
    status: Mapped[str] = mapped_column(Text, server_default="active")
    net_debit_cap: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    cap_alarm_percent: Mapped[int] = mapped_column(SmallInteger, server_default="80")
    admitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Window(Base):
    __tablename__ = "exchange_windows"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    business_date: Mapped[date] = mapped_column(Date, unique=True)
    status: Mapped[str] = mapped_column(Text, server_default="open")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Position(Base):
    __tablename__ = "exchange_positions"

    tenant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("exchange_participants.tenant_id"),
                                           primary_key=True)
    window_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("exchange_windows.id"))
    reserved: Mapped[Decimal] = mapped_column(Numeric(38, 12), server_default="0")
    debits: Mapped[Decimal] = mapped_column(Numeric(38, 12), server_default="0")
    fees: Mapped[Decimal] = mapped_column(Numeric(38, 12), server_default="0")
    alarm_raised: Mapped[bool] = mapped_column(Boolean, server_default="false")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PositionCredits(Base):
    """What a brand is owed for conversions into it in the open window, in shards (see migrations/0005)."""

    __tablename__ = "exchange_position_credits"

    tenant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("exchange_positions.tenant_id"), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    credits: Mapped[Decimal] = mapped_column(Numeric(38, 12), server_default="0")


class Pair(Base):
    __tablename__ = "exchange_pairs"

    source_tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    target_tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    status: Mapped[str] = mapped_column(Text, server_default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
