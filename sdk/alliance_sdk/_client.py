"""The two clients: `Alliance` (blocking) and `AsyncAlliance` (asyncio). One API key per client; a brand key
reaches the brand resources, an operator key reaches `admin`."""

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
    AsyncBulk,
    AsyncEntries,
    AsyncHolds,
    AsyncMembers,
    AsyncSigningKeys,
    AsyncWebhookDeliveries,
    AsyncWebhookEndpoints,
    Bulk,
    Entries,
    Holds,
    Members,
    SigningKeys,
    WebhookDeliveries,
    WebhookEndpoints,
)

T = TypeVar("T")


class Alliance(BaseClient):
    """The blocking client. Pass `http_client` to bring your own `httpx.Client` (proxies, transports); the
    SDK closes only a client it made itself."""

    _http: httpx.Client

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
        self._http = http_client or httpx.Client()
        self._owns_http = http_client is None
        self.members = Members(self)
        self.holds = Holds(self)
        self.entries = Entries(self)
        self.bulk = Bulk(self)
        self.webhook_endpoints = WebhookEndpoints(self)
        self.webhook_deliveries = WebhookDeliveries(self)
        self.signing_keys = SigningKeys(self)
        self.admin = Admin(self)

    def _request(self, request: APIRequest, parse: Callable[[Any], T]) -> T:
        http_request = self._build_request(request)
        attempt = 0
        while True:
            try:
                response = self._http.send(http_request)
            except httpx.TransportError as error:
                delay = self._delay_after_error(attempt, error)
                if delay is None:
                    raise self._connection_error(error) from error
            else:
                delay = self._delay_after_response(attempt, response)
                if delay is None:
                    return self._parse(response, parse)
            time.sleep(delay)
            attempt += 1

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
    ) -> None:
        super().__init__(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
        self._http = http_client or httpx.AsyncClient()
        self._owns_http = http_client is None
        self.members = AsyncMembers(self)
        self.holds = AsyncHolds(self)
        self.entries = AsyncEntries(self)
        self.bulk = AsyncBulk(self)
        self.webhook_endpoints = AsyncWebhookEndpoints(self)
        self.webhook_deliveries = AsyncWebhookDeliveries(self)
        self.signing_keys = AsyncSigningKeys(self)
        self.admin = AsyncAdmin(self)

    async def _request(self, request: APIRequest, parse: Callable[[Any], T]) -> T:
        http_request = self._build_request(request)
        attempt = 0
        while True:
            try:
                response = await self._http.send(http_request)
            except httpx.TransportError as error:
                delay = self._delay_after_error(attempt, error)
                if delay is None:
                    raise self._connection_error(error) from error
            else:
                delay = self._delay_after_response(attempt, response)
                if delay is None:
                    return self._parse(response, parse)
            await asyncio.sleep(delay)
            attempt += 1

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncAlliance:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
