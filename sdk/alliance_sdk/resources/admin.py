"""/v1/admin: the alliance operator admits brands, issues their API keys, runs the exchange (`exchange`) and settles
it (`settlement`). Needs an operator key."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from alliance_sdk._models import ApiKey, Tenant
from alliance_sdk._request import APIRequest, fields, path
from alliance_sdk.resources._resource import AsyncResource, SyncResource, list_of
from alliance_sdk.resources.admin_exchange import AdminExchange, AsyncAdminExchange
from alliance_sdk.resources.admin_settlement import AdminSettlement, AsyncAdminSettlement

if TYPE_CHECKING:
    from alliance_sdk._client import Alliance, AsyncAlliance


def _tenant_body(
    code: str, name: str, currency_code: str, point_value: Decimal | str, point_value_effective_from: date | None,
    settlement_currency: str | None, expiry_days: int | None,
) -> dict[str, Any]:
    # The point value goes as a string: it is an exact decimal, never a float.
    return fields(code=code, name=name, currency_code=currency_code, point_value=str(point_value),
                  point_value_effective_from=point_value_effective_from, settlement_currency=settlement_currency,
                  expiry_days=expiry_days)


class Tenants(SyncResource):
    def create(
        self, *, code: str, name: str, currency_code: str, point_value: Decimal | str,
        point_value_effective_from: date | None = None, settlement_currency: str | None = None,
        expiry_days: int | None = None,
    ) -> Tenant:
        """Admits a brand with its points currency; `point_value` is one point's worth in the settlement
        currency (e.g. "0.10" CNY), `expiry_days` the default life of earned points."""
        body = _tenant_body(code, name, currency_code, point_value, point_value_effective_from, settlement_currency,
                            expiry_days)
        return self._client._request(APIRequest("POST", "/v1/admin/tenants", body=body), Tenant.from_json)

    def list(self) -> list[Tenant]:
        return self._client._request(APIRequest("GET", "/v1/admin/tenants"), list_of(Tenant))

    def retrieve(self, tenant_id: int) -> Tenant:
        return self._client._request(APIRequest("GET", path("v1", "admin", "tenants", tenant_id)), Tenant.from_json)


class Keys(SyncResource):
    def create(self, tenant_id: int, *, name: str) -> ApiKey:
        """Issues a brand API key. Its `secret` is in this answer only: hand it to the brand now."""
        return self._client._request(
            APIRequest("POST", path("v1", "admin", "tenants", tenant_id, "keys"), body=fields(name=name)),
            ApiKey.from_json,
        )

    def list(self, tenant_id: int) -> list[ApiKey]:
        return self._client._request(APIRequest("GET", path("v1", "admin", "tenants", tenant_id, "keys")),
                                     list_of(ApiKey))

    def revoke(self, tenant_id: int, key_id: str) -> ApiKey:
        return self._client._request(
            APIRequest("POST", path("v1", "admin", "tenants", tenant_id, "keys", key_id, "revoke")), ApiKey.from_json
        )


class Admin:
    """The operator's side: brands (`tenants`), their API `keys`, the `exchange` and its `settlement`."""

    def __init__(self, client: Alliance) -> None:
        self.tenants = Tenants(client)
        self.keys = Keys(client)
        self.exchange = AdminExchange(client)
        self.settlement = AdminSettlement(client)


class AsyncTenants(AsyncResource):
    async def create(
        self, *, code: str, name: str, currency_code: str, point_value: Decimal | str,
        point_value_effective_from: date | None = None, settlement_currency: str | None = None,
        expiry_days: int | None = None,
    ) -> Tenant:
        """Admits a brand with its points currency; `point_value` is one point's worth in the settlement
        currency (e.g. "0.10" CNY), `expiry_days` the default life of earned points."""
        body = _tenant_body(code, name, currency_code, point_value, point_value_effective_from, settlement_currency,
                            expiry_days)
        return await self._client._request(APIRequest("POST", "/v1/admin/tenants", body=body), Tenant.from_json)

    async def list(self) -> list[Tenant]:
        return await self._client._request(APIRequest("GET", "/v1/admin/tenants"), list_of(Tenant))

    async def retrieve(self, tenant_id: int) -> Tenant:
        return await self._client._request(APIRequest("GET", path("v1", "admin", "tenants", tenant_id)),
                                           Tenant.from_json)


class AsyncKeys(AsyncResource):
    async def create(self, tenant_id: int, *, name: str) -> ApiKey:
        """Issues a brand API key. Its `secret` is in this answer only: hand it to the brand now."""
        return await self._client._request(
            APIRequest("POST", path("v1", "admin", "tenants", tenant_id, "keys"), body=fields(name=name)),
            ApiKey.from_json,
        )

    async def list(self, tenant_id: int) -> list[ApiKey]:
        return await self._client._request(APIRequest("GET", path("v1", "admin", "tenants", tenant_id, "keys")),
                                           list_of(ApiKey))

    async def revoke(self, tenant_id: int, key_id: str) -> ApiKey:
        return await self._client._request(
            APIRequest("POST", path("v1", "admin", "tenants", tenant_id, "keys", key_id, "revoke")), ApiKey.from_json
        )


class AsyncAdmin:
    """The operator's side: brands (`tenants`), their API `keys`, the `exchange` and its `settlement`."""

    def __init__(self, client: AsyncAlliance) -> None:
        self.tenants = AsyncTenants(client)
        self.keys = AsyncKeys(client)
        self.exchange = AsyncAdminExchange(client)
        self.settlement = AsyncAdminSettlement(client)
