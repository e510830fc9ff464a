"""The brand's webhook API: /v1/webhook-endpoints and /v1/webhook-deliveries."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import JSONBody, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.auth.guards import brand_only, caller_transaction
from alliance.webhooks import service
from alliance.webhooks.schemas import (
    DeliveryPage,
    DeliveryRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointUpdate,
)
from alliance.webhooks.tasks import deliver
from alliance.worker.tasks import enqueue_after_commit

Id = Annotated[int, PathParameter(ge=1, le=2**62)]



class WebhookEndpointController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["webhooks"]
    guards = [brand_only]

    @post("/", summary="Register a webhook endpoint (its signing secret is shown once)")
    async def create(self, request: Request, data: JSONBody[EndpointCreate]) -> EndpointCreated:
        cipher = request.app.state.cipher
        endpoint, secret = await caller_transaction(request, lambda s: service.create_endpoint(s, cipher, data))
        return EndpointCreated(**msgspec.structs.asdict(service.endpoint_read(endpoint)), secret=secret)

    @get("/", summary="The brand's webhook endpoints (never their secrets)")
    async def list_all(self, request: Request) -> list[EndpointRead]:
        endpoints = await caller_transaction(request, service.list_endpoints)
        return [service.endpoint_read(e) for e in endpoints]

    @get("/{endpoint_id:int}", summary="One webhook endpoint")
    async def get_one(self, request: Request, endpoint_id: Id) -> EndpointRead:
        endpoint = await caller_transaction(request, lambda s: service.get_endpoint(s, endpoint_id))
        return service.endpoint_read(endpoint)

    @patch("/{endpoint_id:int}", summary="Change an endpoint's URL, event types or status (active re-enables it)")
    async def update(self, request: Request, endpoint_id: Id, data: JSONBody[EndpointUpdate]) -> EndpointRead:
        endpoint = await caller_transaction(request, lambda s: service.update_endpoint(s, endpoint_id, data))
        return service.endpoint_read(endpoint)

    @delete("/{endpoint_id:int}", summary="Delete an endpoint and its delivery log")
    async def remove(self, request: Request, endpoint_id: Id) -> None:
        await caller_transaction(request, lambda s: service.delete_endpoint(s, endpoint_id))

    @get("/{endpoint_id:int}/deliveries", summary="An endpoint's deliveries, newest first (cursor paginated)")
    async def deliveries(
        self, request: Request, endpoint_id: Id,
        cursor: Annotated[str | None, QueryParameter(pattern=r"^[0-9]{1,18}$")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        status: Annotated[Literal["pending", "succeeded", "failed", "abandoned"] | None, QueryParameter()] = None,
    ) -> DeliveryPage:
        return await caller_transaction(request, lambda s: service.list_deliveries(
            s, endpoint_id, cursor=int(cursor) if cursor else None, limit=limit, status=status))


class WebhookDeliveryController(Controller):
    path = "/v1/webhook-deliveries"
    tags = ["webhooks"]
    guards = [brand_only]

    @post("/{delivery_id:int}/redeliver", summary="Send a delivery again now, whatever its status")
    async def redeliver(self, request: Request, delivery_id: Id) -> Response[DeliveryRead]:
        async def work(session: AsyncSession):
            delivery = await service.redeliver(session, delivery_id)
            enqueue_after_commit(session, deliver, tenant_id=delivery.tenant_id, delivery_id=delivery.id)
            return delivery

        delivery = await caller_transaction(request, work)
        return Response(service.delivery_read(delivery), status_code=202)


ROUTE_HANDLERS = [WebhookEndpointController, WebhookDeliveryController]
