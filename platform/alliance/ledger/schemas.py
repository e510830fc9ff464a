"""What the ledger answers with: entries, postings, holds, balances, and the named rejections."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import msgspec


class Rejection(StrEnum):
    """Every way a ledger operation can be refused. Stored with the idempotency key like a success."""

    INSUFFICIENT_POINTS = "insufficient_points"
    ACCOUNT_NOT_FOUND = "account_not_found"
    ACCOUNT_NOT_HOLDABLE = "account_not_holdable"
    INVALID_ENTRY = "invalid_entry"
    UNBALANCED_ENTRY = "unbalanced_entry"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_EXPIRY = "invalid_expiry"
    HOLD_NOT_FOUND = "hold_not_found"
    HOLD_NOT_PENDING = "hold_not_pending"
    HOLD_EXPIRED = "hold_expired"
    AMOUNT_EXCEEDS_HOLD = "amount_exceeds_hold"
    ENTRY_NOT_FOUND = "entry_not_found"
    ENTRY_IS_REVERSAL = "entry_is_reversal"
    ALREADY_REVERSED = "already_reversed"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"


class LedgerRejected(Exception):
    def __init__(self, code: Rejection, detail: dict[str, Any], *, replayed: bool = False) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.code = code
        self.detail = detail
        self.replayed = replayed


class AccountKind(StrEnum):
    MEMBER = "member"
    ISSUANCE = "issuance"
    REDEMPTION = "redemption"
    EXPIRY = "expiry"
    BREAKAGE = "breakage"
    CLEARING = "clearing"
    FEES = "fees"


SYSTEM_KINDS = tuple(k for k in AccountKind if k is not AccountKind.MEMBER)


class Leg(msgspec.Struct, frozen=True):
    """One side of an entry. `expires_at` on a member credit puts it in a lot with that deadline; without
    it the credit inherits the lots the entry's member debits consumed, and the rest never expires."""

    account_id: int
    amount: int
    expires_at: datetime | None = None


class Posting(msgspec.Struct, frozen=True):
    account_id: int
    amount: int
    balance_after: int
    version_after: int
    posted_at: datetime


class Hold(msgspec.Struct, frozen=True):
    id: int
    account_id: int
    amount: int
    status: str
    expires_at: datetime
    created_at: datetime
    metadata: dict[str, Any] = {}
    posted_amount: int | None = None
    entry_id: int | None = None
    resolved_at: datetime | None = None
    replayed: bool = False


class Entry(msgspec.Struct, frozen=True):
    id: int
    kind: str
    created_at: datetime
    postings: list[Posting]
    metadata: dict[str, Any] = {}
    reverses_entry_id: int | None = None
    replayed: bool = False  # the stored answer to an earlier request with the same idempotency key


class HistoryLine(msgspec.Struct, frozen=True):
    entry_id: int
    kind: str
    posting: Posting


class Outcome(msgspec.Struct, frozen=True):
    """The document every ledger_* SQL function returns (and stores under an idempotency key)."""

    ok: bool
    code: str | None = None
    detail: dict[str, Any] = {}
    entry: Entry | None = None
    hold: Hold | None = None
    replayed: bool = False


class Currency(msgspec.Struct, frozen=True):
    tenant_id: int
    id: int
    code: str
    system_shards: int


class AccountBalance(msgspec.Struct, frozen=True):
    account_id: int
    kind: str
    balance: int
    held: int
    available: int
    version: int


class Lot(msgspec.Struct, frozen=True):
    expires_at: datetime | None
    remaining: int


class PointValue(msgspec.Struct, frozen=True):
    value: Decimal
    settlement_currency: str
    effective_at: datetime
