"""/v1/webhook-endpoints and /v1/webhook-deliveries: where the brand's webhooks go, and what was sent there.
Verifying a webhook on arrival is `alliance_sdk.webhooks.verify`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Literal

from alliance_sdk._models import WebhookDelivery, WebhookDeliveryPage, WebhookEndpoint
from alliance_sdk._request import NOT_GIVEN, APIRequest, NotGiven, fields, path
from alliance_sdk.resources._resource import (
    AsyncResource,
    SyncResource,
    every_item,
    every_item_async,
    list_of,
    no_content,
)

DeliveryStatus = Literal["pending", "succeeded", "failed", "abandoned"]


class WebhookEndpoints(SyncResource):
    def create(
        self, url: str, *, event_types: Sequence[str] | None = None, description: str | None = None
    ) -> WebhookEndpoint:
        """Registers an endpoint for `event_types` (every type when left out). Its signing `secret` is in
        this answer only: store it now."""
        body = fields(url=url, event_types=event_types, description=description)
        return self._client._request(APIRequest("POST", "/v1/webhook-endpoints", body=body),
                                     WebhookEndpoint.from_json)

    def list(self) -> list[WebhookEndpoint]:
        return self._client._request(APIRequest("GET", "/v1/webhook-endpoints"), list_of(WebhookEndpoint))

    def retrieve(self, endpoint_id: int) -> WebhookEndpoint:
        return self._client._request(APIRequest("GET", path("v1", "webhook-endpoints", endpoint_id)),
                                     WebhookEndpoint.from_json)

    def update(
        self, endpoint_id: int, *, url: str | NotGiven = NOT_GIVEN, event_types: Sequence[str] | NotGiven = NOT_GIVEN,
        description: str | None | NotGiven = NOT_GIVEN, status: Literal["active", "disabled"] | NotGiven = NOT_GIVEN,
    ) -> WebhookEndpoint:
        """Changes the fields given; None clears the description. `status="active"` re-enables an endpoint
        that was disabled (its failure count starts again)."""
        body = fields(NOT_GIVEN, url=url, event_types=event_types, description=description, status=status)
        return self._client._request(APIRequest("PATCH", path("v1", "webhook-endpoints", endpoint_id), body=body),
                                     WebhookEndpoint.from_json)

    def delete(self, endpoint_id: int) -> None:
        """Deletes the endpoint and its delivery log."""
        self._client._request(APIRequest("DELETE", path("v1", "webhook-endpoints", endpoint_id)), no_content)

    def deliveries_page(
        self, endpoint_id: int, *, cursor: str | None = None, limit: int | None = None,
        status: DeliveryStatus | None = None,
    ) -> WebhookDeliveryPage:
        """One page of the endpoint's delivery log, newest first; pass its `next_cursor` to get the next."""
        params = fields(cursor=cursor, limit=limit, status=status)
        return self._client._request(
            APIRequest("GET", path("v1", "webhook-endpoints", endpoint_id, "deliveries"), params=params),
            WebhookDeliveryPage.from_json,
        )

    def deliveries(
        self, endpoint_id: int, *, limit: int | None = None, status: DeliveryStatus | None = None
    ) -> Iterator[WebhookDelivery]:
        """Every delivery to the endpoint, newest first, fetching `limit`-sized pages as iteration reaches them."""
        return every_item(lambda cursor: self.deliveries_page(endpoint_id, cursor=cursor, limit=limit, status=status))


class WebhookDeliveries(SyncResource):
    def redeliver(self, delivery_id: int) -> WebhookDelivery:
        """Sends the delivery again now, whatever its status; the same message, with the same webhook-id."""
        return self._client._request(APIRequest("POST", path("v1", "webhook-deliveries", delivery_id, "redeliver")),
                                     WebhookDelivery.from_json)


class AsyncWebhookEndpoints(AsyncResource):
    async def create(
        self, url: str, *, event_types: Sequence[str] | None = None, description: str | None = None
    ) -> WebhookEndpoint:
        """Registers an endpoint for `event_types` (every type when left out). Its signing `secret` is in
        this answer only: store it now."""
        body = fields(url=url, event_types=event_types, description=description)
        return await self._client._request(APIRequest("POST", "/v1/webhook-endpoints", body=body),
                                           WebhookEndpoint.from_json)

    async def list(self) -> list[WebhookEndpoint]:
        return await self._client._request(APIRequest("GET", "/v1/webhook-endpoints"), list_of(WebhookEndpoint))

    async def retrieve(self, endpoint_id: int) -> WebhookEndpoint:
        return await self._client._request(APIRequest("GET", path("v1", "webhook-endpoints", endpoint_id)),
                                           WebhookEndpoint.from_json)

    async def update(
        self, endpoint_id: int, *, url: str | NotGiven = NOT_GIVEN, event_types: Sequence[str] | NotGiven = NOT_GIVEN,
        description: str | None | NotGiven = NOT_GIVEN, status: Literal["active", "disabled"] | NotGiven = NOT_GIVEN,
    ) -> WebhookEndpoint:
        """Changes the fields given; None clears the description. `status="active"` re-enables an endpoint
        that was disabled (its failure count starts again)."""
        body = fields(NOT_GIVEN, url=url, event_types=event_types, description=description, status=status)
        return await self._client._request(
            APIRequest("PATCH", path("v1", "webhook-endpoints", endpoint_id), body=body), WebhookEndpoint.from_json
        )

    async def delete(self, endpoint_id: int) -> None:
        """Deletes the endpoint and its delivery log."""
        await self._client._request(APIRequest("DELETE", path("v1", "webhook-endpoints", endpoint_id)), no_content)

    async def deliveries_page(
        self, endpoint_id: int, *, cursor: str | None = None, limit: int | None = None,
        status: DeliveryStatus | None = None,
    ) -> WebhookDeliveryPage:
        """One page of the endpoint's delivery log, newest first; pass its `next_cursor` to get the next."""
        params = fields(cursor=cursor, limit=limit, status=status)
        return await self._client._request(
            APIRequest("GET", path("v1", "webhook-endpoints", endpoint_id, "deliveries"), params=params),
            WebhookDeliveryPage.from_json,
        )

    def deliveries(
        self, endpoint_id: int, *, limit: int | None = None, status: DeliveryStatus | None = None
    ) -> AsyncIterator[WebhookDelivery]:
        """Every delivery to the endpoint, newest first, fetching `limit`-sized pages as iteration reaches them.
        Use it with `async for` (no await)."""
        return every_item_async(lambda cursor: self.deliveries_page(endpoint_id, cursor=cursor, limit=limit,
                                                                    status=status))


class AsyncWebhookDeliveries(AsyncResource):
    async def redeliver(self, delivery_id: int) -> WebhookDelivery:
        """Sends the delivery again now, whatever its status; the same message, with the same webhook-id."""
        return await self._client._request(
            APIRequest("POST", path("v1", "webhook-deliveries", delivery_id, "redeliver")), WebhookDelivery.from_json
        )
