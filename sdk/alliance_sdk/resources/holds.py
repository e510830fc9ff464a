"""/v1/holds: settle a hold placed with `members.hold`, by capturing points (all or part) or releasing them."""

from __future__ import annotations

from alliance_sdk._models import Hold, Operation
from alliance_sdk._request import APIRequest, fields, new_idempotency_key, path
from alliance_sdk.resources._resource import AsyncResource, SyncResource


class Holds(SyncResource):
    def capture(
        self, hold_id: int, *, amount: int | None = None, metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        """Spends `amount` of the held points (all of them by default); the rest goes back to the member."""
        return self._client._request(
            APIRequest("POST", path("v1", "holds", hold_id, "capture"), body=fields(amount=amount, metadata=metadata),
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Operation.from_json,
        )

    def release(self, hold_id: int, *, idempotency_key: str | None = None) -> Hold:
        return self._client._request(
            APIRequest("POST", path("v1", "holds", hold_id, "release"),
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Hold.from_json,
        )


class AsyncHolds(AsyncResource):
    async def capture(
        self, hold_id: int, *, amount: int | None = None, metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        """Spends `amount` of the held points (all of them by default); the rest goes back to the member."""
        return await self._client._request(
            APIRequest("POST", path("v1", "holds", hold_id, "capture"), body=fields(amount=amount, metadata=metadata),
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Operation.from_json,
        )

    async def release(self, hold_id: int, *, idempotency_key: str | None = None) -> Hold:
        return await self._client._request(
            APIRequest("POST", path("v1", "holds", hold_id, "release"),
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Hold.from_json,
        )
