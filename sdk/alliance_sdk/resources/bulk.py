"""/v1/bulk: up to 1000 credits and debits in one request, e.g. a nightly point-of-sale import.

Items run in order, each on its own: a rejected item leaves the others applied. Each carries its own
idempotency key; an item without one gets a new one, written into the item, so calling `apply` again with
the same items (after a crash or a timeout) replays the ones already applied instead of applying them twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alliance_sdk._models import BulkResult
from alliance_sdk._request import APIRequest, fields, new_idempotency_key
from alliance_sdk.resources._resource import AsyncResource, SyncResource
from alliance_sdk.resources.members import Metadata


@dataclass(frozen=True, slots=True)
class BulkCredit:
    member: str
    amount: int
    reason: str
    idempotency_key: str | None = None  # None: a new key, made with the item and kept by it
    expires_at: datetime | None = None
    metadata: Metadata | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "idempotency_key", new_idempotency_key(self.idempotency_key))

    def to_json(self) -> dict[str, Any]:
        return fields(kind="credit", member=self.member, amount=self.amount, reason=self.reason,
                      idempotency_key=self.idempotency_key, expires_at=self.expires_at, metadata=self.metadata)


@dataclass(frozen=True, slots=True)
class BulkDebit:
    member: str
    amount: int
    reason: str
    idempotency_key: str | None = None  # None: a new key, made with the item and kept by it
    metadata: Metadata | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "idempotency_key", new_idempotency_key(self.idempotency_key))

    def to_json(self) -> dict[str, Any]:
        return fields(kind="debit", member=self.member, amount=self.amount, reason=self.reason,
                      idempotency_key=self.idempotency_key, metadata=self.metadata)


BulkItem = BulkCredit | BulkDebit | dict[str, Any]


def _request(items: Sequence[BulkItem]) -> APIRequest:
    body = []
    for item in items:
        if isinstance(item, dict):
            # A dict is the item as the API takes it ({"kind": "credit", "member": ...}); its new key stays in it.
            if not item.get("idempotency_key"):
                item["idempotency_key"] = new_idempotency_key(None)
            body.append(fields(**item))
        else:
            body.append(item.to_json())
    # No Idempotency-Key header: each item carries its key, the same on every retry of this request.
    return APIRequest("POST", "/v1/bulk/operations", body={"items": body})


def _results(data: dict[str, Any]) -> list[BulkResult]:
    return [BulkResult.from_json(result) for result in data["results"]]


class Bulk(SyncResource):
    def apply(self, items: Sequence[BulkItem]) -> list[BulkResult]:
        """Applies the items in order; one result per item, in item order (rejections included)."""
        return self._client._request(_request(items), _results)


class AsyncBulk(AsyncResource):
    async def apply(self, items: Sequence[BulkItem]) -> list[BulkResult]:
        """Applies the items in order; one result per item, in item order (rejections included)."""
        return await self._client._request(_request(items), _results)
