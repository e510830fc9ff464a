"""What the API answers, as frozen dataclasses. Each parses itself from the JSON the API sends and ignores
fields it does not know, so a newer server does not break an older SDK."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Generic, Self, TypeVar

T = TypeVar("T")


def _datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _decimal(value: str | None) -> Decimal | None:
    # The API sends decimals as strings, so they arrive exact; never through a float.
    return None if value is None else Decimal(value)


def _pricing(data: dict[str, Any]) -> dict[str, Any]:
    """What a quote and a conversion price the same way: the brands, the points, the rate and the values."""
    as_sent = ("source_brand", "target_brand", "source_amount", "fee_amount", "target_amount", "currency")
    decimals = ("rate", "remainder", "source_point_value", "target_point_value", "gross_value", "fee_value")
    return {name: data[name] for name in as_sent} | {name: _decimal(data[name]) for name in decimals}


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a cursor-paginated list; pass its `next_cursor` to get the next."""

    _item: ClassVar[Any]  # each kind of page names the model of its items, which parses them
    data: tuple[T, ...]
    next_cursor: str | None  # None on the last page

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(data=tuple(cls._item.from_json(item) for item in data["data"]), next_cursor=data.get("next_cursor"))


@dataclass(frozen=True, slots=True)
class Member:
    external_id: str
    status: str  # "active" or "frozen"
    nickname: str | None
    phone: str | None
    birthday: date | None
    address: str | None
    created_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Member:
        return cls(
            external_id=data["external_id"], status=data["status"], nickname=data.get("nickname"),
            phone=data.get("phone"), address=data.get("address"),
            birthday=date.fromisoformat(data["birthday"]) if data.get("birthday") else None,
            created_at=_datetime(data["created_at"]),
        )


@dataclass(frozen=True, slots=True)
class Posting:
    account: str  # "member:<external id>" or "system:<kind>"
    amount: int
    balance_after: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Posting:
        return cls(account=data["account"], amount=data["amount"], balance_after=data["balance_after"])


@dataclass(frozen=True, slots=True)
class Entry:
    """A journal entry: postings that sum to zero."""

    id: int
    kind: str
    created_at: datetime
    postings: tuple[Posting, ...]
    metadata: dict[str, Any]
    reverses_entry_id: int | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(
            id=data["id"], kind=data["kind"], created_at=_datetime(data["created_at"]),
            postings=tuple(Posting.from_json(p) for p in data["postings"]), metadata=data.get("metadata", {}),
            reverses_entry_id=data.get("reverses_entry_id"),
        )


@dataclass(frozen=True, slots=True)
class Operation:
    """What every value-moving call answers: its journal entry and the members' balances after it."""

    entry: Entry
    balances: dict[str, int]  # external id -> balance

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operation:
        return cls(entry=Entry.from_json(data["entry"]),
                   balances={b["member"]: b["balance"] for b in data["balances"]})


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    member: str
    amount: int
    status: str  # "pending", "posted", "voided", "expired"
    expires_at: datetime
    created_at: datetime
    captured: int | None
    entry_id: int | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hold:
        return cls(
            id=data["id"], member=data["member"], amount=data["amount"], status=data["status"],
            expires_at=_datetime(data["expires_at"]), created_at=_datetime(data["created_at"]),
            captured=data.get("captured"), entry_id=data.get("entry_id"),
        )


@dataclass(frozen=True, slots=True)
class ExpiringPoints:
    date: date  # the business date on which these points expire
    amount: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExpiringPoints:
        return cls(date=date.fromisoformat(data["date"]), amount=data["amount"])


@dataclass(frozen=True, slots=True)
class Balance:
    member: str
    balance: int
    held: int
    available: int
    expiring: tuple[ExpiringPoints, ...]
    as_of: datetime | None  # set when the balance was asked for a past instant

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Balance:
        return cls(
            member=data["member"], balance=data["balance"], held=data["held"], available=data["available"],
            expiring=tuple(ExpiringPoints.from_json(e) for e in data.get("expiring", [])),
            as_of=_datetime(data.get("as_of")),
        )


@dataclass(frozen=True, slots=True)
class HistoryItem:
    entry_id: int
    kind: str
    amount: int  # signed: positive for points in
    balance_after: int
    posted_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistoryItem:
        return cls(entry_id=data["entry_id"], kind=data["kind"], amount=data["amount"],
                   balance_after=data["balance_after"], posted_at=_datetime(data["posted_at"]))


@dataclass(frozen=True, slots=True)
class HistoryPage(Page[HistoryItem]):
    _item = HistoryItem


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    code: str
    name: str
    status: str
    currency_code: str
    expiry_days: int | None
    created_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tenant:
        return cls(
            id=data["id"], code=data["code"], name=data["name"], status=data["status"],
            currency_code=data["currency_code"], expiry_days=data.get("expiry_days"),
            created_at=_datetime(data["created_at"]),
        )


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    secret: str | None  # the whole key, only in the answer to its creation: store it then

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApiKey:
        return cls(key_id=data["key_id"], name=data["name"], created_at=_datetime(data["created_at"]),
                   revoked_at=_datetime(data.get("revoked_at")), secret=data.get("secret") or None)


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: int
    url: str
    description: str | None
    event_types: tuple[str, ...]  # empty: every event type
    status: str  # "active" or "disabled"
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    secret: str | None  # the signing secret "whsec_...", only in the answer to its creation: store it then

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookEndpoint:
        return cls(
            id=data["id"], url=data["url"], description=data.get("description"),
            event_types=tuple(data["event_types"]), status=data["status"],
            disabled_reason=data.get("disabled_reason"), consecutive_failures=data["consecutive_failures"],
            created_at=_datetime(data["created_at"]), secret=data.get("secret") or None,
        )


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event sent (or to be sent) to one endpoint, with the outcome of its last attempt."""

    id: int
    endpoint_id: int
    event_id: int
    event_type: str
    status: str  # "pending", "succeeded", "failed" (out of attempts), "abandoned" (its endpoint was disabled)
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]  # the message as sent: {"type", "timestamp", "data"}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookDelivery:
        return cls(
            id=data["id"], endpoint_id=data["endpoint_id"], event_id=data["event_id"],
            event_type=data["event_type"], status=data["status"], attempts=data["attempts"],
            next_attempt_at=_datetime(data.get("next_attempt_at")), last_status_code=data.get("last_status_code"),
            last_error=data.get("last_error"), created_at=_datetime(data["created_at"]),
            delivered_at=_datetime(data.get("delivered_at")), payload=data["payload"],
        )


@dataclass(frozen=True, slots=True)
class WebhookDeliveryPage(Page[WebhookDelivery]):
    _item = WebhookDelivery


@dataclass(frozen=True, slots=True)
class BulkResult:
    """One bulk item's outcome; `error` is set when it was rejected."""

    index: int
    idempotency_key: str
    status: str  # "applied", "replayed" (the key's earlier outcome) or "rejected"
    entry_id: int | None
    balance: int | None  # the member's balance right after this item's entry
    error: dict[str, Any] | None  # the problem: its "code", "title" and detail members (e.g. "available")

    @property
    def error_code(self) -> str | None:
        return self.error["code"] if self.error else None

    @property
    def error_title(self) -> str | None:
        return self.error.get("title") if self.error else None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BulkResult:
        return cls(index=data["index"], idempotency_key=data["idempotency_key"], status=data["status"],
                   entry_id=data.get("entry_id"), balance=data.get("balance"), error=data.get("error"))


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    public_jwk: dict[str, Any]  # {"kty": "OKP", "crv": "Ed25519", "x": ...}
    not_before: datetime
    not_after: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    status: str  # "scheduled", "active", "expired" or "revoked"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SigningKey:
        return cls(
            kid=data["kid"], public_jwk=dict(data["public_jwk"]), not_before=_datetime(data["not_before"]),
            not_after=_datetime(data.get("not_after")), revoked_at=_datetime(data.get("revoked_at")),
            created_at=_datetime(data["created_at"]), status=data["status"],
        )


@dataclass(frozen=True, slots=True)
class RateCard:
    """One version of a pair's prices and limits; amounts and limits in source points."""

    id: int
    source_tenant_id: int
    source_brand: str
    target_tenant_id: int
    target_brand: str
    version: int
    effective_at: datetime
    rate: Decimal | None  # target points per source point; None: derived from the point values when priced
    fee_bps: int
    min_amount: int
    max_amount: int
    member_daily_limit: int | None
    pair_daily_cap: int | None
    quote_ttl_seconds: int
    created_at: datetime
    status: str  # "scheduled", "in_force" or "superseded"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RateCard:
        return cls(
            id=data["id"], source_tenant_id=data["source_tenant_id"], source_brand=data["source_brand"],
            target_tenant_id=data["target_tenant_id"], target_brand=data["target_brand"], version=data["version"],
            effective_at=_datetime(data["effective_at"]), rate=_decimal(data.get("rate")), fee_bps=data["fee_bps"],
            min_amount=data["min_amount"], max_amount=data["max_amount"],
            member_daily_limit=data.get("member_daily_limit"), pair_daily_cap=data.get("pair_daily_cap"),
            quote_ttl_seconds=data["quote_ttl_seconds"], created_at=_datetime(data["created_at"]),
            status=data["status"],
        )


@dataclass(frozen=True, slots=True)
class Price:
    """A direction the brand's points convert in (or are converted into), with its rate cards."""

    source_brand: str
    target_brand: str
    status: str  # the pair's: "open" or "closed"
    in_force: RateCard | None
    scheduled: tuple[RateCard, ...]  # announced, not yet in force

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Price:
        in_force = data.get("in_force")
        return cls(source_brand=data["source_brand"], target_brand=data["target_brand"], status=data["status"],
                   in_force=RateCard.from_json(in_force) if in_force else None,
                   scheduled=tuple(RateCard.from_json(card) for card in data.get("scheduled", [])))


@dataclass(frozen=True, slots=True)
class Quote:
    """A price locked until `expires_at`: pass its id to `conversions.create(quote_id=...)`, once."""

    id: int
    source_brand: str
    target_brand: str
    source_amount: int
    fee_amount: int  # source points
    target_amount: int
    rate: Decimal
    remainder: Decimal  # the fraction of a target point not issued (rounding is down)
    source_point_value: Decimal
    target_point_value: Decimal
    currency: str  # the settlement currency of the values
    gross_value: Decimal
    fee_value: Decimal
    rate_card_version: int
    expires_at: datetime
    created_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Quote:
        return cls(
            id=data["id"], **_pricing(data), rate_card_version=data["rate_card_version"],
            expires_at=_datetime(data["expires_at"]), created_at=_datetime(data["created_at"]),
        )


@dataclass(frozen=True, slots=True)
class LinkCode:
    """A single-use code for the member to give to another brand, which redeems it to link the two memberships."""

    code: str  # e.g. "7KQF-M2XD-9PWR"
    member: str
    expires_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinkCode:
        return cls(code=data["code"], member=data["member"], expires_at=_datetime(data["expires_at"]))


@dataclass(frozen=True, slots=True)
class AllianceLink:
    member: str
    identity: str  # "idn_...": the person's handle in the alliance; a friend names it to receive points
    brands: tuple[str, ...]  # the codes of the brands whose memberships the identity links, this one included
    linked_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AllianceLink:
        return cls(member=data["member"], identity=data["identity"], brands=tuple(data["brands"]),
                   linked_at=_datetime(data["linked_at"]))


@dataclass(frozen=True, slots=True)
class Conversion:
    """A conversion as one of its two brands sees it: its own member, the other side by alliance identity."""

    id: int
    status: str  # "reserved", "committed", "aborted" or "expired"
    role: str  # "source" or "target": the reading brand's side
    member: str  # the reading brand's member
    counterparty_identity: str | None
    source_brand: str
    target_brand: str
    source_amount: int
    fee_amount: int  # source points
    target_amount: int
    rate: Decimal
    remainder: Decimal
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
    countersignature: str | None  # the platform's compact JWS of the committed record: `conversions.verify`
    replayed: bool  # this answer is the stored outcome of an earlier request with the same Idempotency-Key

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Conversion:
        return cls(
            id=data["id"], status=data["status"], role=data["role"], member=data["member"],
            counterparty_identity=data.get("counterparty_identity"), **_pricing(data),
            net_value=_decimal(data["net_value"]), quote_id=data.get("quote_id"),
            expires_at=_datetime(data["expires_at"]), created_at=_datetime(data["created_at"]),
            committed_at=_datetime(data.get("committed_at")), resolved_at=_datetime(data.get("resolved_at")),
            abort_reason=data.get("abort_reason"), entry_id=data.get("entry_id"), window_id=data.get("window_id"),
            countersignature=data.get("countersignature"), replayed=data.get("replayed", False),
        )


@dataclass(frozen=True, slots=True)
class ConversionPage(Page[Conversion]):
    _item = Conversion


@dataclass(frozen=True, slots=True)
class Position:
    """A brand's position in the open settlement window, in the settlement currency."""

    window_id: int
    business_date: date
    reserved: Decimal  # open reservations (gross)
    debits: Decimal  # committed conversions out (gross)
    credits: Decimal  # committed conversions in (net of fees)
    fees: Decimal  # the operator's share of the debits
    net_debit: Decimal  # reserved + debits - credits: what counts against the cap
    available: Decimal  # the cap less the net debit
    alarm_raised: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Position:
        return cls(
            window_id=data["window_id"], business_date=date.fromisoformat(data["business_date"]),
            reserved=_decimal(data["reserved"]), debits=_decimal(data["debits"]), credits=_decimal(data["credits"]),
            fees=_decimal(data["fees"]), net_debit=_decimal(data["net_debit"]), available=_decimal(data["available"]),
            alarm_raised=data["alarm_raised"],
        )


@dataclass(frozen=True, slots=True)
class Participant:
    """A brand admitted to the exchange, with what it may owe the alliance in a window and what it owes now."""

    tenant_id: int
    brand: str
    status: str  # "active" or "suspended"
    net_debit_cap: Decimal
    cap_alarm_percent: int
    admitted_at: datetime
    position: Position

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Participant:
        return cls(tenant_id=data["tenant_id"], brand=data["brand"], status=data["status"],
                   net_debit_cap=_decimal(data["net_debit_cap"]), cap_alarm_percent=data["cap_alarm_percent"],
                   admitted_at=_datetime(data["admitted_at"]), position=Position.from_json(data["position"]))


@dataclass(frozen=True, slots=True)
class Pair:
    """One direction of conversion: the source brand's points into the target brand's."""

    source_tenant_id: int
    source_brand: str
    target_tenant_id: int
    target_brand: str
    status: str  # "open" or "closed"
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pair:
        return cls(source_tenant_id=data["source_tenant_id"], source_brand=data["source_brand"],
                   target_tenant_id=data["target_tenant_id"], target_brand=data["target_brand"],
                   status=data["status"], created_at=_datetime(data["created_at"]),
                   updated_at=_datetime(data["updated_at"]))


@dataclass(frozen=True, slots=True)
class Window:
    """A settlement window: one business day of the exchange, from its opening to its cut-off and settlement."""

    id: int
    business_date: date
    status: str  # "open", "closed", "pending_settlement", "settled", "disputed" or "aborted"
    opened_at: datetime
    closed_at: datetime | None  # the cut-off
    computed_at: datetime | None
    resolved_at: datetime | None  # settled or aborted
    conversions: int | None  # these three once computed
    fee_income: Decimal | None  # the operator's, in the settlement currency
    fee_income_fen: int | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        return cls(
            id=data["id"], business_date=date.fromisoformat(data["business_date"]), status=data["status"],
            opened_at=_datetime(data["opened_at"]), closed_at=_datetime(data.get("closed_at")),
            computed_at=_datetime(data.get("computed_at")), resolved_at=_datetime(data.get("resolved_at")),
            conversions=data.get("conversions"), fee_income=_decimal(data.get("fee_income")),
            fee_income_fen=data.get("fee_income_fen"),
        )


@dataclass(frozen=True, slots=True)
class Flow:
    """What a window's conversions moved from one brand to another, in the settlement currency."""

    source_brand: str
    target_brand: str
    conversions: int
    source_points: int
    target_points: int
    gross: Decimal  # the source brand pays it
    fees: Decimal  # within gross: the operator keeps them
    net: Decimal  # the target brand receives it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Flow:
        return cls(
            source_brand=data["source_brand"], target_brand=data["target_brand"], conversions=data["conversions"],
            source_points=data["source_points"], target_points=data["target_points"], gross=_decimal(data["gross"]),
            fees=_decimal(data["fees"]), net=_decimal(data["net"]),
        )


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A correction landing in a window (a dispute accepted, a window aborted and carried over)."""

    id: int
    brand: str  # receives `amount` (pays it, when negative)
    counterparty: str | None  # pays it; None: the operator
    amount: Decimal
    reason: str
    from_window_id: int | None
    dispute_id: int | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Adjustment:
        return cls(
            id=data["id"], brand=data["brand"], counterparty=data.get("counterparty"), amount=_decimal(data["amount"]),
            reason=data["reason"], from_window_id=data.get("from_window_id"), dispute_id=data.get("dispute_id"),
        )


@dataclass(frozen=True, slots=True)
class SettlementPosition:
    """A brand's position in a computed window: what it receives (+) or pays (-)."""

    brand: str
    paid_out: Decimal  # gross, for its members' conversions out
    fees: Decimal  # within paid_out
    received: Decimal  # net, for conversions into its points
    adjustments: Decimal
    net: Decimal  # exact
    net_fen: int  # net in fen, rounded half away from zero: what is paid
    opening_fen: int  # unpaid positions of earlier windows
    closing_fen: int  # opening + net
    bank_ref: str | None  # once paid
    paid_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SettlementPosition:
        return cls(
            brand=data["brand"], paid_out=_decimal(data["paid_out"]), fees=_decimal(data["fees"]),
            received=_decimal(data["received"]), adjustments=_decimal(data["adjustments"]), net=_decimal(data["net"]),
            net_fen=data["net_fen"], opening_fen=data["opening_fen"], closing_fen=data["closing_fen"],
            bank_ref=data.get("bank_ref"), paid_at=_datetime(data.get("paid_at")),
        )


@dataclass(frozen=True, slots=True)
class Settlement:
    """A window with its settlement: the flows, the adjustments, each brand's position, and the checks' report."""

    window: Window
    flows: tuple[Flow, ...]
    adjustments: tuple[Adjustment, ...]
    positions: tuple[SettlementPosition, ...]
    report: dict[str, Any] | None  # the checks that proved the computation: {"checks": ..., "mismatches": [...]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settlement:
        return cls(
            window=Window.from_json(data["window"]), flows=tuple(Flow.from_json(f) for f in data["flows"]),
            adjustments=tuple(Adjustment.from_json(a) for a in data["adjustments"]),
            positions=tuple(SettlementPosition.from_json(p) for p in data["positions"]), report=data.get("report"),
        )

    def position(self, brand: str) -> SettlementPosition:
        """The position of the brand with this code; KeyError when it has none in the window."""
        for position in self.positions:
            if position.brand == brand:
                return position
        raise KeyError(brand)


@dataclass(frozen=True, slots=True)
class StatementSummary:
    """The brand's latest statement of a window; `settlement.statement(window_id)` downloads it."""

    window_id: int
    business_date: date
    window_status: str
    version: int  # a statement is issued again, one version up, when its position is paid
    net_fen: int  # + the brand receives it, - it pays
    closing_fen: int  # with the unpaid positions of earlier windows
    paid_at: datetime | None
    created_at: datetime
    csv_url: str  # API paths
    pdf_url: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StatementSummary:
        return cls(
            window_id=data["window_id"], business_date=date.fromisoformat(data["business_date"]),
            window_status=data["window_status"], version=data["version"], net_fen=data["net_fen"],
            closing_fen=data["closing_fen"], paid_at=_datetime(data.get("paid_at")),
            created_at=_datetime(data["created_at"]), csv_url=data["csv_url"], pdf_url=data["pdf_url"],
        )


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement file as downloaded, with the platform's signature over its exact bytes: `settlement.verify`."""

    window_id: int
    format: str  # "csv" or "pdf"
    version: int
    content: bytes
    signature: str  # a compact JWS with the content detached: "header..signature"


@dataclass(frozen=True, slots=True)
class Dispute:
    """A brand's dispute of a line of its statement (its flows with one counterparty in a window)."""

    id: int
    brand: str  # the disputing brand
    window_id: int
    counterparty: str
    reason: str
    status: str  # "open", "accepted" or "rejected"
    resolution: str | None
    adjustment: Adjustment | None  # accepted: the correction, in the window that was open then
    created_at: datetime
    resolved_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Dispute:
        adjustment = data.get("adjustment")
        return cls(
            id=data["id"], brand=data["brand"], window_id=data["window_id"], counterparty=data["counterparty"],
            reason=data["reason"], status=data["status"], resolution=data.get("resolution"),
            adjustment=Adjustment.from_json(adjustment) if adjustment else None,
            created_at=_datetime(data["created_at"]), resolved_at=_datetime(data.get("resolved_at")),
        )
