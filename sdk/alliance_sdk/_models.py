"""What the API answers, as frozen dataclasses. Each parses itself from the JSON the API sends and ignores
fields it does not know, so a newer server does not break an older SDK."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any


def _datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


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
class HistoryPage:
    data: tuple[HistoryItem, ...]
    next_cursor: str | None  # None on the last page

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistoryPage:
        return cls(data=tuple(HistoryItem.from_json(i) for i in data["data"]), next_cursor=data.get("next_cursor"))


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
class WebhookDeliveryPage:
    data: tuple[WebhookDelivery, ...]
    next_cursor: str | None  # None on the last page

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookDeliveryPage:
        return cls(data=tuple(WebhookDelivery.from_json(d) for d in data["data"]),
                   next_cursor=data.get("next_cursor"))


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
