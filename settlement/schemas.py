"""Settlement's API: windows and their settlement for the operator; statements and disputes for brands. Money is
exact decimals (strings) and integer fen."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import Meta, Struct

from tenants.schemas import Code

WindowStatus = Literal["open", "closed", "pending_settlement", "settled", "disputed", "aborted"]
BankRef = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[\x20-\x7e]+$",
                              description="the bank's reference of the transfer")]


class FlowRead(Struct):
    """What the window's conversions moved from one brand to another."""

    source_brand: str
    target_brand: str
    conversions: int
    source_points: int
    target_points: int
    gross: Decimal  # the source brand pays it
    fees: Decimal  # the operator keeps them
    net: Decimal  # the target brand receives it


class AdjustmentRead(Struct):
    id: int
    brand: str  # receives amount (pays, when negative)
    counterparty: str | None  # pays it; None: the operator
    amount: Decimal
    reason: str
    from_window_id: int | None
    dispute_id: int | None


class PositionRead(Struct):
    brand: str
    paid_out: Decimal
    fees: Decimal
    received: Decimal
    adjustments: Decimal
    net: Decimal  # + receives, - pays
    net_fen: int  # net in fen, rounded half away from zero
    opening_fen: int  # unpaid positions of earlier windows
    closing_fen: int  # opening + net
    bank_ref: str | None
    paid_at: datetime | None


class WindowRead(Struct):
    id: int
    business_date: date
    status: WindowStatus
    opened_at: datetime
    closed_at: datetime | None  # the cut-off
    computed_at: datetime | None
    resolved_at: datetime | None
    conversions: int | None = None
    fee_income: Decimal | None = None
    fee_income_fen: int | None = None


class SettlementRead(Struct):
    """A window with its settlement: the flows, each brand's position, the operator's income, the checks."""

    window: WindowRead
    flows: list[FlowRead]
    adjustments: list[AdjustmentRead]
    positions: list[PositionRead]
    report: dict | None


class CloseWindow(Struct, forbid_unknown_fields=True):
    # The window to close (it must be the open one); absent: whichever is open.
    business_date: date | None = None


class AbortWindow(Struct, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=1, max_length=300)]


class StatementsIssued(Struct):
    window_id: int
    issued: int  # brands that got a new statement


class PaymentCreate(Struct, forbid_unknown_fields=True):
    brand: Code
    bank_ref: BankRef


class StatementRead(Struct):
    window_id: int
    business_date: date
    window_status: WindowStatus
    version: int
    net_fen: int
    closing_fen: int
    paid_at: datetime | None
    created_at: datetime
    csv_url: str
    pdf_url: str


class DisputeCreate(Struct, forbid_unknown_fields=True):
    window_id: Annotated[int, Meta(ge=1, le=2**62)]
    counterparty: Code  # the statement line: the flows with this brand
    reason: Annotated[str, Meta(min_length=1, max_length=1000)]


class DisputeResolve(Struct, forbid_unknown_fields=True):
    outcome: Literal["accepted", "rejected"]
    resolution: Annotated[str, Meta(min_length=1, max_length=1000)]
    # Accepted: what the disputing brand receives from the counterparty (negative: pays it), in fen; it lands in
    # the open window as an adjustment (a closed window is never edited).
    adjustment_fen: Annotated[int, Meta(ge=-10**15, le=10**15)] | None = None

    def __post_init__(self) -> None:
        if (self.outcome == "accepted") != (self.adjustment_fen not in (None, 0)):
            raise ValueError("an accepted dispute needs a non-zero adjustment_fen; a rejected one none")


class DisputeRead(Struct):
    id: int
    brand: str
    window_id: int
    counterparty: str
    reason: str
    status: Literal["open", "accepted", "rejected"]
    resolution: str | None
    adjustment: AdjustmentRead | None
    created_at: datetime
    resolved_at: datetime | None
