"""/v1/entries: read a journal entry, or reverse it (once) with a new linked entry."""

from __future__ import annotations

from alliance_sdk._models import Entry, Operation
from alliance_sdk._request import APIRequest, fields, new_idempotency_key, path
from alliance_sdk.resources._resource import AsyncResource, SyncResource


class Entries(SyncResource):
    def retrieve(self, entry_id: int) -> Entry:
        return self._client._request(APIRequest("GET", path("v1", "entries", entry_id)), Entry.from_json)

    def reverse(
        self, entry_id: int, *, reason: str, metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        return self._client._request(
            APIRequest("POST", path("v1", "entries", entry_id, "reversal"),
                       body=fields(reason=reason, metadata=metadata),
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Operation.from_json,
        )


class AsyncEntries(AsyncResource):
    async def retrieve(self, entry_id: int) -> Entry:
        return await self._client._request(APIRequest("GET", path("v1", "entries", entry_id)), Entry.from_json)

    async def reverse(
        self, entry_id: int, *, reason: str, metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        return await self._client._request(
            APIRequest("POST", path("v1", "entries", entry_id, "reversal"),
                       body=fields(reason=reason, metadata=metadata),
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Operation.from_json,
        )
