"""Identities (shared by the brands they link), links (each brand's own) and link codes (the issuing brand's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, LargeBinary, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from alliance.db import Base
from alliance.db.tenancy import TenantScoped


class AllianceIdentity(Base):
    __tablename__ = "alliance_identities"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    public_id: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AllianceLink(TenantScoped, Base):
    __tablename__ = "alliance_links"

    external_id: Mapped[str] = mapped_column(Text, primary_key=True)
    identity_id: Mapped[int] = mapped_column(BigInteger)
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LinkCode(TenantScoped, Base):
    __tablename__ = "alliance_link_codes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    external_id: Mapped[str] = mapped_column(Text)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    redeemed_by_tenant: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
