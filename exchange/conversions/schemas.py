"""Conversion requests (each signed by the source brand: the Alliance-Signature header over the exact body) and
what both brands read of a conversion."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import Meta, Struct

from tenants.schemas import Code, ExternalId, Points, Reason

IdentityHandle = Annotated[str, Meta(pattern=r"^idn_[a-z2-7]{16}$", description="an alliance identity, idn_...")]
Status = Literal["reserved", "committed", "aborted", "expired"]


class ConversionCreate(Struct, forbid_unknown_fields=True):
    member: ExternalId  # the calling brand's member whose points are converted
    to_brand: Code
    # Source points; may be left out when quote_id is given (the quote's amount).
    amount: Points | None = None
    quote_id: Annotated[int, Meta(ge=1, le=2**62)] | None = None
    # Who receives: a friend's alliance identity; absent: the member's own membership at to_brand.
    to_identity: IdentityHandle | None = None
    # True: convert at once. False: reserve (the points are held) and commit or abort later.
    commit: bool = True
    # How long a reservation stays open before it expires (ignored when committing at once).
    reserve_seconds: Annotated[int, Meta(ge=5, le=3600)] = 60

    def __post_init__(self) -> None:
        if self.amount is None and self.quote_id is None:
            raise ValueError("give the amount, or a quote_id")


class ConversionCommit(Struct, forbid_unknown_fields=True):
    """The body of a commit: an empty object (it is signed like any other)."""


class ConversionAbort(Struct, forbid_unknown_fields=True):
    reason: Reason | None = None


class ConversionRead(Struct):
    """A conversion as one of its two brands sees it: its own member, the other side by alliance identity."""

    id: int
    status: Status
    role: Literal["source", "target"]  # which side the reading brand is on
    member: str  # the reading brand's member
    counterparty_identity: str | None  # the other side's alliance identity (the source's may be unlinked)
    source_brand: str
    target_brand: str
    source_amount: int
    fee_amount: int  # source points
    target_amount: int
    rate: Decimal
    remainder: Decimal  # the fraction of a target point not issued
    source_point_value: Decimal
    target_point_value: Decimal
    currency: str
    gross_value: Decimal  # what the source brand owes for it, in the settlement currency
    fee_value: Decimal  # the operator's fee
    net_value: Decimal  # what the target brand is owed
    quote_id: int | None
    expires_at: datetime  # the reservation's deadline
    created_at: datetime
    committed_at: datetime | None
    resolved_at: datetime | None
    abort_reason: str | None
    entry_id: int | None  # the reading brand's journal entry, once committed
    window_id: int | None  # the settlement window it was committed in
    # The platform's countersignature of the committed conversion (a compact JWS carrying the record), verifiable
    # with GET /.well-known/jwks.json; the same for both brands, and the same each time it is read.
    countersignature: str | None
    replayed: bool = False


class ConversionPage(Struct):
    data: list[ConversionRead]
    next_cursor: str | None = None
