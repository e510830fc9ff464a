"""The two clients: `Alliance` (blocking) and `AsyncAlliance` (asyncio). One API key per client; a brand key
reaches the brand resources, an operator key reaches `admin`. A brand that converts points also gives its
signing key (`signing_key`, `signing_kid`): the client signs each conversion request with it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from alliance_sdk._base import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, BaseClient
from alliance_sdk._request import APIRequest
from alliance_sdk.resources import (
    Admin,
    AsyncAdmin,
    AsyncBrand,
    AsyncBrandSettlement,
    AsyncBulk,
    AsyncConversions,
    AsyncEntries,
    AsyncExchange,
    AsyncHolds,
    AsyncLinks,
    AsyncMembers,
    AsyncSigningKeys,
    AsyncWebhookDeliveries,
    AsyncWebhookEndpoints,
    Brand,
    BrandSettlement,
    Bulk,
    Conversions,
    Entries,
    Exchange,
    Holds,
    Links,
    Members,
    SigningKeys,
    WebhookDeliveries,
    WebhookEndpoints,
)

T = TypeVar("T")


class Alliance(BaseClient):
    """The blocking client. Pass `http_client` to bring your own `httpx.Client` (proxies, transports); the
    SDK closes only a client it made itself. Signed calls (conversions) need `signing_key`, the brand's Ed25519
    private key as PEM, and `signing_kid`, the kid its public key is registered under; `tenant_id`, the brand's
    id, spares the one GET /v1/brand that otherwise finds it."""

    _http: httpx.Client

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        signing_key: str | bytes | None = None,
        signing_kid: str | None = None,
        tenant_id: int | None = None,
    ) -> None:
        super().__init__(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries,
                         signing_key=signing_key, signing_kid=signing_kid, tenant_id=tenant_id)
        self._http = http_client or httpx.Client()
        self._owns_http = http_client is None
        self.members = Members(self)
        self.holds = Holds(self)
        self.entries = Entries(self)
        self.bulk = Bulk(self)
        self.webhook_endpoints = WebhookEndpoints(self)
        self.webhook_deliveries = WebhookDeliveries(self)
        self.signing_keys = SigningKeys(self)
        self.brand = Brand(self)
        self.exchange = Exchange(self)
        self.links = Links(self)
        self.conversions = Conversions(self)
        self.settlement = BrandSettlement(self)
        self.admin = Admin(self)

    def _request(self, request: APIRequest, parse: Callable[[Any], T]) -> T:
        tenant_id = self._signing_tenant_id() if request.signed else None
        attempt = 0
        while True:
            http_request = self._build_request(request, tenant_id)  # per attempt: each is signed afresh
            try:
                response = self._http.send(http_request)
            except httpx.TransportError as error:
                delay = self._delay_after_error(attempt, error)
                if delay is None:
                    raise self._connection_error(error) from error
            else:
                delay = self._delay_after_response(attempt, response)
                if delay is None:
                    return self._parse(request, response, parse)
            time.sleep(delay)
            attempt += 1

    def _signing_tenant_id(self) -> int:
        self._check_can_sign()
        if self.tenant_id is None:
            self.tenant_id = self.brand.retrieve().id
        return self.tenant_id

    def _platform_jwks_for(self, jws: str) -> dict[str, Any]:
        """The platform's JWKS to verify `jws` with: the cached one, fetched first if it lacks `jws`'s key."""
        if self._needs_platform_jwks(jws):
            self._platform_jwks = self.signing_keys.platform_jwks()
        return self._platform_jwks

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Alliance:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncAlliance(BaseClient):
    """The asyncio client: the same resources, each call awaited; history is an async iterator."""

    _http: httpx.AsyncClient

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        signing_key: str | bytes | None = None,
        signing_kid: str | None = None,
        tenant_id: int | None = None,
    ) -> None:
        super().__init__(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries,
                         signing_key=signing_key, signing_kid=signing_kid, tenant_id=tenant_id)
        self._http = http_client or httpx.AsyncClient()
        self._owns_http = http_client is None
        self.members = AsyncMembers(self)
        self.holds = AsyncHolds(self)
        self.entries = AsyncEntries(self)
        self.bulk = AsyncBulk(self)
        self.webhook_endpoints = AsyncWebhookEndpoints(self)
        self.webhook_deliveries = AsyncWebhookDeliveries(self)
        self.signing_keys = AsyncSigningKeys(self)
        self.brand = AsyncBrand(self)
        self.exchange = AsyncExchange(self)
        self.links = AsyncLinks(self)
        self.conversions = AsyncConversions(self)
        self.settlement = AsyncBrandSettlement(self)
        self.admin = AsyncAdmin(self)

    async def _request(self, request: APIRequest, parse: Callable[[Any], T]) -> T:
        tenant_id = await self._signing_tenant_id() if request.signed else None
        attempt = 0
        while True:
            http_request = self._build_request(request, tenant_id)  # per attempt: each is signed afresh
            try:
                response = await self._http.send(http_request)
            except httpx.TransportError as error:
                delay = self._delay_after_error(attempt, error)
                if delay is None:
                    raise self._connection_error(error) from error
            else:
                delay = self._delay_after_response(attempt, response)
                if delay is None:
                    return self._parse(request, response, parse)
            await asyncio.sleep(delay)
            attempt += 1

    async def _signing_tenant_id(self) -> int:
        self._check_can_sign()
        if self.tenant_id is None:
            self.tenant_id = (await self.brand.retrieve()).id
        return self.tenant_id

    async def _platform_jwks_for(self, jws: str) -> dict[str, Any]:
        """The platform's JWKS to verify `jws` with: the cached one, fetched first if it lacks `jws`'s key."""
        if self._needs_platform_jwks(jws):
            self._platform_jwks = await self.signing_keys.platform_jwks()
        return self._platform_jwks

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncAlliance:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
