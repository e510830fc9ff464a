"""Rate cards for the operator (/v1/admin/exchange/rate-cards); the price list and quotes for brands
(/v1/exchange/rates, /v1/exchange/quotes)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, QueryParameter

from alliance.auth.guards import brand_only, caller_transaction, current_principal, operator_only
from exchange.rates import service
from exchange.rates.schemas import PriceRead, QuoteCreate, QuoteRead, RateCardCreate, RateCardRead

TenantIdQuery = Annotated[int | None, QueryParameter(ge=1, le=2**62)]


class RateCardController(Controller):
    path = "/v1/admin/exchange/rate-cards"
    tags = ["operator"]
    guards = [operator_only]

    @post("/", summary="Publish a new version of a pair's rate card, in force now or from effective_at")
    async def create(self, request: Request, data: JSONBody[RateCardCreate]) -> RateCardRead:
        return await caller_transaction(request, lambda s: service.create_rate_card(s, data))

    @get("/", summary="Rate cards, every version, optionally of one source or target brand")
    async def list_all(self, request: Request, source_tenant_id: TenantIdQuery = None,
                       target_tenant_id: TenantIdQuery = None) -> list[RateCardRead]:
        return await caller_transaction(request, lambda s: service.list_rate_cards(s, source_tenant_id, target_tenant_id))


class PriceController(Controller):
    path = "/v1/exchange"
    tags = ["exchange"]
    guards = [brand_only]

    @get("/rates", summary="The pairs this brand is part of, with the rate card in force and those announced")
    async def rates(self, request: Request) -> list[PriceRead]:
        tenant_id = current_principal(request).tenant_id
        return await caller_transaction(request, lambda s: service.price_list(s, tenant_id))

    @post("/quotes", summary="Lock the price of a conversion for a short time (the rate card's quote_ttl_seconds)")
    async def quote(self, request: Request, data: JSONBody[QuoteCreate]) -> QuoteRead:
        async with request.app.state.db.connection() as conn:
            return await service.quote(conn, current_principal(request).tenant_id, data)


ROUTE_HANDLERS = [RateCardController, PriceController]
