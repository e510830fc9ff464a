"""/v1/conversions: a member's points converted into another brand's points, at once or in two phases (reserve,
then commit or abort), priced by the rate card in force or by a quote.

Creating, committing and aborting are signed with the brand's signing key (the client's `signing_key`) and carry
an Idempotency-Key: a fresh one per call unless `idempotency_key=` is given, the same one on each retry, each
retry signed afresh. An answer repeated for a key already used says so: `conversion.replayed`. Both brands read
a conversion; once committed it carries the platform's countersignature, which `verify` checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from alliance_sdk._errors import CountersignatureError
from alliance_sdk._models import Conversion, ConversionPage
from alliance_sdk._request import APIRequest, fields, new_idempotency_key, path
from alliance_sdk.resources._resource import AsyncResource, SyncResource, every_item, every_item_async

ConversionStatus = Literal["reserved", "committed", "aborted", "expired"]
Role = Literal["source", "target"]


def _create(
    *, member: str, to_brand: str, amount: int | None, quote_id: int | None, to_identity: str | None, commit: bool,
    reserve_seconds: int | None, idempotency_key: str | None,
) -> APIRequest:
    body = fields(member=member, to_brand=to_brand, amount=amount, quote_id=quote_id, to_identity=to_identity,
                  commit=commit, reserve_seconds=reserve_seconds)
    return APIRequest("POST", "/v1/conversions", body=body, idempotency_key=new_idempotency_key(idempotency_key),
                      signed=True)


def _resolve(conversion_id: int, action: str, body: dict[str, Any], idempotency_key: str | None) -> APIRequest:
    return APIRequest("POST", path("v1", "conversions", conversion_id, action), body=body,
                      idempotency_key=new_idempotency_key(idempotency_key), signed=True)


def _list_page(cursor: str | None, limit: int | None, status: ConversionStatus | None, role: Role | None) -> APIRequest:
    return APIRequest("GET", "/v1/conversions", params=fields(cursor=cursor, limit=limit, status=status, role=role))


def _countersignature(conversion: Conversion) -> str:
    if conversion.countersignature is None:
        raise CountersignatureError(
            f"conversion {conversion.id} is {conversion.status}: only a committed conversion is countersigned")
    return conversion.countersignature


def _countersigned_record(conversion: Conversion, countersignature: str, jwks: dict[str, Any]) -> dict[str, Any]:
    from alliance_sdk import signing  # here: verifying needs the [signing] extra, the rest of the SDK does not

    record = signing.verify_countersignature(countersignature, jwks)
    source, target = record.get("source", {}), record.get("target", {})
    # A genuine countersignature of another conversion, or of other figures, proves nothing about this one.
    countersigned = (record.get("type"), record.get("conversion_id"), source.get("brand"), source.get("amount"),
                     source.get("fee_amount"), target.get("brand"), target.get("amount"), record.get("net_value"))
    shown = ("alliance.conversion", conversion.id, conversion.source_brand, conversion.source_amount,
             conversion.fee_amount, conversion.target_brand, conversion.target_amount, str(conversion.net_value))
    if countersigned != shown:
        raise CountersignatureError(f"the countersignature is not of conversion {conversion.id} as read")
    return record


class Conversions(SyncResource):
    def create(
        self, member: str, to_brand: str, amount: int | None = None, *, quote_id: int | None = None,
        to_identity: str | None = None, commit: bool = True, reserve_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> Conversion:
        """Converts `amount` of `member`'s points into `to_brand`'s points (a brand code), priced by the rate card
        in force, or by the quote `quote_id` (then `amount` may be left out). They go to the member's own
        membership at `to_brand`, or to a friend's: `to_identity="idn_..."`. With `commit=False` the points are
        only reserved, for `reserve_seconds` (default 60): commit or abort then."""
        return self._client._request(
            _create(member=member, to_brand=to_brand, amount=amount, quote_id=quote_id, to_identity=to_identity,
                    commit=commit, reserve_seconds=reserve_seconds, idempotency_key=idempotency_key),
            Conversion.from_json,
        )

    def reserve(
        self, member: str, to_brand: str, amount: int | None = None, *, quote_id: int | None = None,
        to_identity: str | None = None, reserve_seconds: int | None = None, idempotency_key: str | None = None,
    ) -> Conversion:
        """`create(..., commit=False)`: the member's points are held until `commit` or `abort`, or until
        `reserve_seconds` (default 60) pass and the reservation expires."""
        return self.create(member, to_brand, amount, quote_id=quote_id, to_identity=to_identity, commit=False,
                           reserve_seconds=reserve_seconds, idempotency_key=idempotency_key)

    def commit(self, conversion_id: int, *, idempotency_key: str | None = None) -> Conversion:
        """Commits a reserved conversion: both brands' points move at once."""
        return self._client._request(_resolve(conversion_id, "commit", {}, idempotency_key), Conversion.from_json)

    def abort(self, conversion_id: int, *, reason: str | None = None, idempotency_key: str | None = None) -> Conversion:
        """Aborts a reserved conversion: the member's points are released. `reason` is a slug, e.g. "changed_mind"."""
        return self._client._request(_resolve(conversion_id, "abort", fields(reason=reason), idempotency_key),
                                     Conversion.from_json)

    def retrieve(self, conversion_id: int) -> Conversion:
        return self._client._request(APIRequest("GET", path("v1", "conversions", conversion_id)),
                                     Conversion.from_json)

    def list_page(
        self, *, cursor: str | None = None, limit: int | None = None, status: ConversionStatus | None = None,
        role: Role | None = None,
    ) -> ConversionPage:
        """One page of the brand's conversions, as source and as target (or `role`), newest first; pass its
        `next_cursor` to get the next."""
        return self._client._request(_list_page(cursor, limit, status, role), ConversionPage.from_json)

    def list(
        self, *, limit: int | None = None, status: ConversionStatus | None = None, role: Role | None = None
    ) -> Iterator[Conversion]:
        """Every conversion of the brand's, newest first, fetching `limit`-sized pages as iteration reaches them."""
        return every_item(lambda cursor: self.list_page(cursor=cursor, limit=limit, status=status, role=role))

    def verify(self, conversion: Conversion) -> dict[str, Any]:
        """The record the platform countersigned for this committed conversion, once the countersignature verifies
        with the platform's public keys and names this conversion's figures; CountersignatureError otherwise.
        Needs the [signing] extra."""
        countersignature = _countersignature(conversion)
        return _countersigned_record(conversion, countersignature, self._client._platform_jwks_for(countersignature))


class AsyncConversions(AsyncResource):
    async def create(
        self, member: str, to_brand: str, amount: int | None = None, *, quote_id: int | None = None,
        to_identity: str | None = None, commit: bool = True, reserve_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> Conversion:
        """Converts `amount` of `member`'s points into `to_brand`'s points (a brand code), priced by the rate card
        in force, or by the quote `quote_id` (then `amount` may be left out). They go to the member's own
        membership at `to_brand`, or to a friend's: `to_identity="idn_..."`. With `commit=False` the points are
        only reserved, for `reserve_seconds` (default 60): commit or abort then."""
        return await self._client._request(
            _create(member=member, to_brand=to_brand, amount=amount, quote_id=quote_id, to_identity=to_identity,
                    commit=commit, reserve_seconds=reserve_seconds, idempotency_key=idempotency_key),
            Conversion.from_json,
        )

    async def reserve(
        self, member: str, to_brand: str, amount: int | None = None, *, quote_id: int | None = None,
        to_identity: str | None = None, reserve_seconds: int | None = None, idempotency_key: str | None = None,
    ) -> Conversion:
        """`create(..., commit=False)`: the member's points are held until `commit` or `abort`, or until
        `reserve_seconds` (default 60) pass and the reservation expires."""
        return await self.create(member, to_brand, amount, quote_id=quote_id, to_identity=to_identity, commit=False,
                                 reserve_seconds=reserve_seconds, idempotency_key=idempotency_key)

    async def commit(self, conversion_id: int, *, idempotency_key: str | None = None) -> Conversion:
        """Commits a reserved conversion: both brands' points move at once."""
        return await self._client._request(_resolve(conversion_id, "commit", {}, idempotency_key),
                                           Conversion.from_json)

    async def abort(
        self, conversion_id: int, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> Conversion:
        """Aborts a reserved conversion: the member's points are released. `reason` is a slug, e.g. "changed_mind"."""
        return await self._client._request(_resolve(conversion_id, "abort", fields(reason=reason), idempotency_key),
                                           Conversion.from_json)

    async def retrieve(self, conversion_id: int) -> Conversion:
        return await self._client._request(APIRequest("GET", path("v1", "conversions", conversion_id)),
                                           Conversion.from_json)

    async def list_page(
        self, *, cursor: str | None = None, limit: int | None = None, status: ConversionStatus | None = None,
        role: Role | None = None,
    ) -> ConversionPage:
        """One page of the brand's conversions, as source and as target (or `role`), newest first; pass its
        `next_cursor` to get the next."""
        return await self._client._request(_list_page(cursor, limit, status, role), ConversionPage.from_json)

    def list(
        self, *, limit: int | None = None, status: ConversionStatus | None = None, role: Role | None = None
    ) -> AsyncIterator[Conversion]:
        """Every conversion of the brand's, newest first, fetching `limit`-sized pages as iteration reaches them.
        Use it with `async for` (no await)."""
        return every_item_async(lambda cursor: self.list_page(cursor=cursor, limit=limit, status=status, role=role))

    async def verify(self, conversion: Conversion) -> dict[str, Any]:
        """The record the platform countersigned for this committed conversion, once the countersignature verifies
        with the platform's public keys and names this conversion's figures; CountersignatureError otherwise.
        Needs the [signing] extra."""
        countersignature = _countersignature(conversion)
        jwks = await self._client._platform_jwks_for(countersignature)
        return _countersigned_record(conversion, countersignature, jwks)
