"""/v1/exchange: the brand's price list (the pairs it is part of and their rate cards) and quotes."""

from __future__ import annotations

from alliance_sdk._models import Price, Quote
from alliance_sdk._request import APIRequest, fields
from alliance_sdk.resources._resource import AsyncResource, SyncResource, list_of


def _quote(to_brand: str, amount: int) -> APIRequest:
    # A quote moves no value: it needs neither a signature nor an idempotency key.
    return APIRequest("POST", "/v1/exchange/quotes", body=fields(to_brand=to_brand, amount=amount))


class Exchange(SyncResource):
    def rates(self) -> list[Price]:
        """Each direction the brand converts in, either way, with its rate card in force and those announced."""
        return self._client._request(APIRequest("GET", "/v1/exchange/rates"), list_of(Price))

    def quote(self, to_brand: str, amount: int) -> Quote:
        """Prices `amount` of the brand's points into `to_brand`'s (a brand code) and locks that price for the
        rate card's quote_ttl_seconds."""
        return self._client._request(_quote(to_brand, amount), Quote.from_json)


class AsyncExchange(AsyncResource):
    async def rates(self) -> list[Price]:
        """Each direction the brand converts in, either way, with its rate card in force and those announced."""
        return await self._client._request(APIRequest("GET", "/v1/exchange/rates"), list_of(Price))

    async def quote(self, to_brand: str, amount: int) -> Quote:
        """Prices `amount` of the brand's points into `to_brand`'s (a brand code) and locks that price for the
        rate card's quote_ttl_seconds."""
        return await self._client._request(_quote(to_brand, amount), Quote.from_json)
