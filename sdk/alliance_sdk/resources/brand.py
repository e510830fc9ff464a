"""/v1/brand: the brand the API key belongs to. Its `id` is the tenant id that signed requests name."""

from __future__ import annotations

from alliance_sdk._models import Tenant
from alliance_sdk._request import APIRequest
from alliance_sdk.resources._resource import AsyncResource, SyncResource


class Brand(SyncResource):
    def retrieve(self) -> Tenant:
        return self._client._request(APIRequest("GET", "/v1/brand"), Tenant.from_json)


class AsyncBrand(AsyncResource):
    async def retrieve(self) -> Tenant:
        return await self._client._request(APIRequest("GET", "/v1/brand"), Tenant.from_json)
