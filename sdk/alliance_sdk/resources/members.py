"""/v1/members: a brand's members, the points they earn, spend, gift and hold, their balance and history.

Members are addressed by the brand's own id for them (`external_id`). Every value-moving call sends an
Idempotency-Key: a fresh one per call unless `idempotency_key=` is given, the same one on each retry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from typing import Literal

from alliance_sdk._models import Balance, HistoryItem, HistoryPage, Hold, Member, Operation
from alliance_sdk._request import NOT_GIVEN, APIRequest, NotGiven, fields, new_idempotency_key, path
from alliance_sdk.resources._resource import AsyncResource, SyncResource, every_item, every_item_async

Metadata = dict[str, str]


class Members(SyncResource):
    def upsert(
        self, external_id: str, *, nickname: str | None = None, phone: str | None = None,
        birthday: date | None = None, address: str | None = None,
    ) -> Member:
        """Creates the member, or updates the profile fields given of the one with this external id."""
        body = fields(external_id=external_id, nickname=nickname, phone=phone, birthday=birthday, address=address)
        return self._client._request(APIRequest("POST", "/v1/members", body=body), Member.from_json)

    def retrieve(self, external_id: str) -> Member:
        return self._client._request(APIRequest("GET", path("v1", "members", external_id)), Member.from_json)

    def update(
        self, external_id: str, *, nickname: str | None | NotGiven = NOT_GIVEN, phone: str | None | NotGiven = NOT_GIVEN,
        birthday: date | None | NotGiven = NOT_GIVEN, address: str | None | NotGiven = NOT_GIVEN,
        status: Literal["active", "frozen"] | NotGiven = NOT_GIVEN,
    ) -> Member:
        """Changes the fields given; None clears a profile field. A frozen member's points cannot move."""
        body = fields(NOT_GIVEN, nickname=nickname, phone=phone, birthday=birthday, address=address, status=status)
        return self._client._request(APIRequest("PATCH", path("v1", "members", external_id), body=body),
                                     Member.from_json)

    def credit(
        self, external_id: str, amount: int, *, reason: str, expires_at: datetime | None = None,
        metadata: Metadata | None = None, idempotency_key: str | None = None,
    ) -> Operation:
        body = fields(amount=amount, reason=reason, expires_at=expires_at, metadata=metadata)
        return self._client._request(
            APIRequest("POST", path("v1", "members", external_id, "credits"), body=body,
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Operation.from_json,
        )

    def debit(
        self, external_id: str, amount: int, *, reason: str, metadata: Metadata | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        body = fields(amount=amount, reason=reason, metadata=metadata)
        return self._client._request(
            APIRequest("POST", path("v1", "members", external_id, "debits"), body=body,
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Operation.from_json,
        )

    def gift(
        self, external_id: str, amount: int, *, to: str, metadata: Metadata | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        """Moves points from this member to another member of the brand."""
        body = fields(to=to, amount=amount, metadata=metadata)
        return self._client._request(
            APIRequest("POST", path("v1", "members", external_id, "gifts"), body=body,
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Operation.from_json,
        )

    def hold(
        self, external_id: str, amount: int, *, reason: str, expires_in_seconds: int | None = None,
        metadata: Metadata | None = None, idempotency_key: str | None = None,
    ) -> Hold:
        """Reserves points for a later `holds.capture` or `holds.release`; unresolved, it expires."""
        body = fields(amount=amount, reason=reason, expires_in_seconds=expires_in_seconds, metadata=metadata)
        return self._client._request(
            APIRequest("POST", path("v1", "members", external_id, "holds"), body=body,
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Hold.from_json,
        )

    def balance(
        self, external_id: str, *, expiring_within_days: int | None = None, at: datetime | None = None
    ) -> Balance:
        """The balance now (with held, available and soon-expiring points), or at a past instant `at`."""
        params = fields(expiring_within_days=expiring_within_days, at=at)
        return self._client._request(APIRequest("GET", path("v1", "members", external_id, "balance"), params=params),
                                     Balance.from_json)

    def history_page(
        self, external_id: str, *, cursor: str | None = None, limit: int | None = None,
        since: datetime | None = None, until: datetime | None = None, kind: str | None = None,
    ) -> HistoryPage:
        """One page of the member's postings, newest first; pass its `next_cursor` to get the next."""
        params = fields(cursor=cursor, limit=limit, since=since, until=until, kind=kind)
        return self._client._request(APIRequest("GET", path("v1", "members", external_id, "history"), params=params),
                                     HistoryPage.from_json)

    def history(
        self, external_id: str, *, limit: int | None = None, since: datetime | None = None,
        until: datetime | None = None, kind: str | None = None,
    ) -> Iterator[HistoryItem]:
        """Every posting of the member, newest first, fetching `limit`-sized pages as iteration reaches them."""
        return every_item(lambda cursor: self.history_page(external_id, cursor=cursor, limit=limit, since=since,
                                                           until=until, kind=kind))


class AsyncMembers(AsyncResource):
    async def upsert(
        self, external_id: str, *, nickname: str | None = None, phone: str | None = None,
        birthday: date | None = None, address: str | None = None,
    ) -> Member:
        """Creates the member, or updates the profile fields given of the one with this external id."""
        body = fields(external_id=external_id, nickname=nickname, phone=phone, birthday=birthday, address=address)
        return await self._client._request(APIRequest("POST", "/v1/members", body=body), Member.from_json)

    async def retrieve(self, external_id: str) -> Member:
        return await self._client._request(APIRequest("GET", path("v1", "members", external_id)), Member.from_json)

    async def update(
        self, external_id: str, *, nickname: str | None | NotGiven = NOT_GIVEN, phone: str | None | NotGiven = NOT_GIVEN,
        birthday: date | None | NotGiven = NOT_GIVEN, address: str | None | NotGiven = NOT_GIVEN,
        status: Literal["active", "frozen"] | NotGiven = NOT_GIVEN,
    ) -> Member:
        """Changes the fields given; None clears a profile field. A frozen member's points cannot move."""
        body = fields(NOT_GIVEN, nickname=nickname, phone=phone, birthday=birthday, address=address, status=status)
        return await self._client._request(APIRequest("PATCH", path("v1", "members", external_id), body=body),
                                           Member.from_json)

    async def credit(
        self, external_id: str, amount: int, *, reason: str, expires_at: datetime | None = None,
        metadata: Metadata | None = None, idempotency_key: str | None = None,
    ) -> Operation:
        body = fields(amount=amount, reason=reason, expires_at=expires_at, metadata=metadata)
        return await self._client._request(
            APIRequest("POST", path("v1", "members", external_id, "credits"), body=body,
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Operation.from_json,
        )

    async def debit(
        self, external_id: str, amount: int, *, reason: str, metadata: Metadata | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        body = fields(amount=amount, reason=reason, metadata=metadata)
        return await self._client._request(
            APIRequest("POST", path("v1", "members", external_id, "debits"), body=body,
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Operation.from_json,
        )

    async def gift(
        self, external_id: str, amount: int, *, to: str, metadata: Metadata | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        """Moves points from this member to another member of the brand."""
        body = fields(to=to, amount=amount, metadata=metadata)
        return await self._client._request(
            APIRequest("POST", path("v1", "members", external_id, "gifts"), body=body,
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Operation.from_json,
        )

    async def hold(
        self, external_id: str, amount: int, *, reason: str, expires_in_seconds: int | None = None,
        metadata: Metadata | None = None, idempotency_key: str | None = None,
    ) -> Hold:
        """Reserves points for a later `holds.capture` or `holds.release`; unresolved, it expires."""
        body = fields(amount=amount, reason=reason, expires_in_seconds=expires_in_seconds, metadata=metadata)
        return await self._client._request(
            APIRequest("POST", path("v1", "members", external_id, "holds"), body=body,
                       idempotency_key=new_idempotency_key(idempotency_key)),
            Hold.from_json,
        )

    async def balance(
        self, external_id: str, *, expiring_within_days: int | None = None, at: datetime | None = None
    ) -> Balance:
        """The balance now (with held, available and soon-expiring points), or at a past instant `at`."""
        params = fields(expiring_within_days=expiring_within_days, at=at)
        return await self._client._request(
            APIRequest("GET", path("v1", "members", external_id, "balance"), params=params), Balance.from_json
        )

    async def history_page(
        self, external_id: str, *, cursor: str | None = None, limit: int | None = None,
        since: datetime | None = None, until: datetime | None = None, kind: str | None = None,
    ) -> HistoryPage:
        """One page of the member's postings, newest first; pass its `next_cursor` to get the next."""
        params = fields(cursor=cursor, limit=limit, since=since, until=until, kind=kind)
        return await self._client._request(
            APIRequest("GET", path("v1", "members", external_id, "history"), params=params), HistoryPage.from_json
        )

    def history(
        self, external_id: str, *, limit: int | None = None, since: datetime | None = None,
        until: datetime | None = None, kind: str | None = None,
    ) -> AsyncIterator[HistoryItem]:
        """Every posting of the member, newest first, fetching `limit`-sized pages as iteration reaches them.
        Use it with `async for` (no await)."""
        return every_item_async(lambda cursor: self.history_page(external_id, cursor=cursor, limit=limit, since=since,
                                                                 until=until, kind=kind))
