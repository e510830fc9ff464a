"""The operator's exchange API: admitting brands (participants), their caps and positions, and pairs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from alliance.decimals import checked

TenantId = Annotated[int, Meta(ge=1, le=2**62)]
Money = Annotated[Decimal, Meta(description='an exact amount in the settlement currency, e.g. "50000.00"')]
AlarmPercent = Annotated[int, Meta(ge=1, le=100, description="share of the cap at which net_debit_cap.alarm fires")]
MAX_CAP = Decimal("1000000000000")


def _cap(value: Decimal) -> Decimal:
    return checked(value, "net_debit_cap", low=Decimal(0), high=MAX_CAP, places=2)


class ParticipantCreate(Struct, forbid_unknown_fields=True):
    tenant_id: TenantId
    # What the brand may owe the alliance within a settlement window (reservations count).
    net_debit_cap: Money
    cap_alarm_percent: AlarmPercent = 80

    def __post_init__(self) -> None:
        _cap(self.net_debit_cap)


class ParticipantUpdate(Struct, forbid_unknown_fields=True):
    status: Literal["active", "suspended"] | UnsetType = UNSET
    net_debit_cap: Money | UnsetType = UNSET
    cap_alarm_percent: AlarmPercent | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.net_debit_cap is not UNSET:
            _cap(self.net_debit_cap)


class PositionRead(Struct):
    """A brand's position in the open window, in the settlement currency."""

    window_id: int
    business_date: date
    reserved: Decimal  # open reservations (gross)
    debits: Decimal  # committed conversions out (gross)
    credits: Decimal  # committed conversions in (net of fees)
    fees: Decimal  # within debits: the operator's
    net_debit: Decimal  # reserved + debits - credits: what counts against the cap
    available: Decimal  # net_debit_cap - net_debit
    alarm_raised: bool


class ParticipantRead(Struct):
    tenant_id: int
    brand: str
    status: str
    net_debit_cap: Decimal
    cap_alarm_percent: int
    admitted_at: datetime
    position: PositionRead


class PairCreate(Struct, forbid_unknown_fields=True):
    source_tenant_id: TenantId
    target_tenant_id: TenantId

    def __post_init__(self) -> None:
        if self.source_tenant_id == self.target_tenant_id:
            raise ValueError("a pair joins two different brands")


class PairUpdate(Struct, forbid_unknown_fields=True):
    status: Literal["open", "closed"]


class PairRead(Struct):
    source_tenant_id: int
    source_brand: str
    target_tenant_id: int
    target_brand: str
    status: str
    created_at: datetime
    updated_at: datetime
