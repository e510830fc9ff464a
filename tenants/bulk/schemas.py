"""The bulk endpoint's request and response bodies. Each item is a credit or a debit, told apart by `kind`,
with the same constraints as the single endpoints' bodies plus its own idempotency key."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from tenants.schemas import ExternalId, Instant, Metadata, Points, Reason

MAX_ITEMS = 1000

# PostgreSQL text cannot hold NUL, and a key is an identifier: no control characters at all.
IdempotencyKey = Annotated[str, Meta(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]


class BulkCredit(Struct, tag_field="kind", tag="credit", forbid_unknown_fields=True):
    member: ExternalId
    amount: Points
    reason: Reason
    idempotency_key: IdempotencyKey
    expires_at: Instant | None = None
    metadata: Metadata = {}


class BulkDebit(Struct, tag_field="kind", tag="debit", forbid_unknown_fields=True):
    member: ExternalId
    amount: Points
    reason: Reason
    idempotency_key: IdempotencyKey
    metadata: Metadata = {}


BulkItem = BulkCredit | BulkDebit


class BulkCreate(Struct, forbid_unknown_fields=True):
    items: Annotated[list[BulkItem], Meta(min_length=1, max_length=MAX_ITEMS)]


class BulkResult(Struct, omit_defaults=True):
    """One item's outcome. `error` is a problem's `code` and `title` with its detail members."""

    index: int
    idempotency_key: str
    status: Literal["applied", "replayed", "rejected"]
    entry_id: int | None = None
    balance: int | None = None  # the member's balance right after this item's entry
    error: dict[str, Any] | None = None


class BulkRead(Struct):
    results: list[BulkResult]
