"""The brand API's request and response bodies. Constraints live in the types, so bad input is refused
with a validation_error before any service runs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

Code = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9-]{1,31}$", description="lowercase slug")]
CurrencyCode = Annotated[str, Meta(pattern=r"^[A-Z][A-Z0-9_]{1,15}$")]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
ExternalId = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
Points = Annotated[int, Meta(gt=0, le=1_000_000_000_000, description="whole points")]
Reason = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9_.:-]+$")]
Metadata = Annotated[
    dict[Annotated[str, Meta(min_length=1, max_length=40)], Annotated[str, Meta(max_length=500)]],
    Meta(max_length=20, description="at most 20 string pairs"),
]
Phone = Annotated[str, Meta(min_length=3, max_length=32, pattern=r"^\+?[0-9 ()-]+$")]
Address = Annotated[str, Meta(min_length=1, max_length=500)]
Nickname = Annotated[str, Meta(min_length=1, max_length=100)]
# Instants must say their offset: a naive time means different moments to different parties.
Instant = Annotated[datetime, Meta(tz=True, description="ISO-8601 with an offset, e.g. 2027-01-31T16:00:00Z")]
PointValue = Annotated[Decimal, Meta(description="value of one point in the settlement currency, >= 0")]


class TenantCreate(Struct, forbid_unknown_fields=True):
    code: Code
    name: Name
    currency_code: CurrencyCode
    point_value: PointValue
    point_value_effective_from: date | None = None
    settlement_currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] = "CNY"
    expiry_days: Annotated[int, Meta(ge=1, le=3650)] | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.point_value <= 1_000_000) or not self.point_value.is_finite():
            raise ValueError("point_value must be between 0 and 1000000")


class TenantRead(Struct):
    id: int
    code: str
    name: str
    status: str
    currency_code: str
    expiry_days: int | None
    created_at: datetime


class KeyCreate(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]


class KeyRead(Struct):
    key_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreated(KeyRead):
    secret: str = ""  # the whole key: shown this once, stored only as a hash


class MemberUpsert(Struct, forbid_unknown_fields=True):
    external_id: ExternalId
    nickname: Nickname | None = None
    phone: Phone | None = None
    birthday: date | None = None
    address: Address | None = None


class MemberUpdate(Struct, forbid_unknown_fields=True):
    nickname: Nickname | None | UnsetType = UNSET
    phone: Phone | None | UnsetType = UNSET
    birthday: date | None | UnsetType = UNSET
    address: Address | None | UnsetType = UNSET
    status: Literal["active", "frozen"] | UnsetType = UNSET


class MemberRead(Struct):
    external_id: str
    status: str
    nickname: str | None
    phone: str | None
    birthday: date | None
    address: str | None
    created_at: datetime


class CreditCreate(Struct, forbid_unknown_fields=True):
    amount: Points
    reason: Reason
    expires_at: Instant | None = None
    metadata: Metadata = {}


class DebitCreate(Struct, forbid_unknown_fields=True):
    amount: Points
    reason: Reason
    metadata: Metadata = {}


class GiftCreate(Struct, forbid_unknown_fields=True):
    to: ExternalId
    amount: Points
    metadata: Metadata = {}


class HoldCreate(Struct, forbid_unknown_fields=True):
    amount: Points
    reason: Reason
    expires_in_seconds: Annotated[int, Meta(ge=1, le=7 * 24 * 3600)] = 900
    metadata: Metadata = {}


class HoldCapture(Struct, forbid_unknown_fields=True):
    amount: Points | None = None
    metadata: Metadata = {}


class ReversalCreate(Struct, forbid_unknown_fields=True):
    reason: Reason
    metadata: Metadata = {}


class PostingRead(Struct):
    account: str  # "member:<external id>" or "system:<kind>"
    amount: int
    balance_after: int


class EntryRead(Struct):
    id: int
    kind: str
    created_at: datetime
    postings: list[PostingRead]
    metadata: dict[str, object]
    reverses_entry_id: int | None = None


class MemberBalance(Struct):
    member: str
    balance: int


class OperationRead(Struct):
    """What every value-moving call answers: the journal entry and the members' balances after it."""

    entry: EntryRead
    balances: list[MemberBalance]
    replayed: bool = False  # the stored answer to an earlier request with this Idempotency-Key


class HoldRead(Struct):
    id: int
    member: str
    amount: int
    status: str
    expires_at: datetime
    created_at: datetime
    captured: int | None = None
    entry_id: int | None = None
    replayed: bool = False


class ExpiringPoints(Struct):
    date: date
    amount: int


class BalanceRead(Struct):
    member: str
    balance: int
    held: int
    available: int
    expiring: list[ExpiringPoints]
    as_of: datetime | None = None


class HistoryItem(Struct):
    entry_id: int
    kind: str
    amount: int
    balance_after: int
    posted_at: datetime


class HistoryPage(Struct):
    data: list[HistoryItem]
    next_cursor: str | None = None

