"""Brands' signing keys and the signatures already seen (replay refusal)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, LargeBinary, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from alliance.db import Base
from alliance.db.tenancy import TenantScoped


class SigningKey(TenantScoped, Base):
    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    kid: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {"kty": "OKP", "crv": "Ed25519", "x": ...}
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    not_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SeenSignature(TenantScoped, Base):
    __tablename__ = "seen_signatures"

    digest: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)  # sha256 of the signature bytes
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
