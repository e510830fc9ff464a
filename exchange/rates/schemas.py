"""Rate cards (the operator's), the price list and quotes (the brands')."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import Meta, Struct

from alliance.decimals import checked
from exchange.membership.schemas import TenantId
from tenants.schemas import Code, Instant, Points

Rate = Annotated[Decimal, Meta(description='target points per source point, e.g. "2" or "0.125"; at most 12 decimals')]
MAX_RATE = Decimal("1000000")


class RateCardCreate(Struct, forbid_unknown_fields=True):
    source_tenant_id: TenantId
    target_tenant_id: TenantId
    # Absent: now. A later instant announces the card ahead; the card in force is the latest effective one.
    effective_at: Instant | None = None
    # Absent: derived from the two brands' point values when each conversion is priced.
    rate: Rate | None = None
    fee_bps: Annotated[int, Meta(ge=0, le=9999, description="fee in basis points of the source amount")] = 0
    min_amount: Points = 1
    max_amount: Points = 1_000_000_000
    member_daily_limit: Points | None = None
    pair_daily_cap: Points | None = None
    quote_ttl_seconds: Annotated[int, Meta(ge=5, le=600)] = 30

    def __post_init__(self) -> None:
        if self.rate is not None:
            checked(self.rate, "rate", low=Decimal(0), high=MAX_RATE, places=12, positive=True)
        if self.max_amount < self.min_amount:
            raise ValueError("max_amount must be at least min_amount")


class RateCardRead(Struct):
    id: int
    source_tenant_id: int
    source_brand: str
    target_tenant_id: int
    target_brand: str
    version: int
    effective_at: datetime
    rate: Decimal | None  # None: derived from the point values when priced
    fee_bps: int
    min_amount: int
    max_amount: int
    member_daily_limit: int | None
    pair_daily_cap: int | None
    quote_ttl_seconds: int
    created_at: datetime
    # scheduled (not yet in force), in_force, or superseded (a later card is in force).
    status: Literal["scheduled", "in_force", "superseded"]


class PriceRead(Struct):
    """One direction a brand's members can convert in (or be converted into), with its cards."""

    source_brand: str
    target_brand: str
    status: str  # the pair's: open or closed
    in_force: RateCardRead | None
    scheduled: list[RateCardRead]


class QuoteCreate(Struct, forbid_unknown_fields=True):
    to_brand: Code
    amount: Points  # source points


class QuoteRead(Struct):
    """A price locked until expires_at; pass its id to a conversion to use it (once)."""

    id: int
    source_brand: str
    target_brand: str
    source_amount: int
    fee_amount: int  # source points
    target_amount: int
    rate: Decimal
    remainder: Decimal  # the fraction of a target point not issued (rounding is always down)
    source_point_value: Decimal
    target_point_value: Decimal
    currency: str
    gross_value: Decimal  # source_amount x source point value
    fee_value: Decimal
    rate_card_version: int
    expires_at: datetime
    created_at: datetime
