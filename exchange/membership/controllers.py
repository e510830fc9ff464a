"""The operator's exchange API: /v1/admin/exchange/participants and /v1/admin/exchange/pairs."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, patch, post
from litestar.params import JSONBody, PathParameter

from alliance.auth.guards import caller_transaction, operator_only
from alliance.calendar import business_date
from exchange.membership import service
from exchange.membership.schemas import (
    PairCreate,
    PairRead,
    PairUpdate,
    ParticipantCreate,
    ParticipantRead,
    ParticipantUpdate,
)

TenantIdPath = Annotated[int, PathParameter(ge=1, le=2**62)]



class ParticipantController(Controller):
    path = "/v1/admin/exchange/participants"
    tags = ["operator"]
    guards = [operator_only]

    @post("/", summary="Admit a brand to the exchange, with its net debit cap")
    async def admit(self, request: Request, data: JSONBody[ParticipantCreate]) -> ParticipantRead:
        today = business_date()
        return await caller_transaction(request, lambda s: service.admit(s, data, business_date=today))

    @get("/", summary="The brands in the exchange, with their caps and positions in the open window")
    async def list_all(self, request: Request) -> list[ParticipantRead]:
        return await caller_transaction(request, service.list_participants)

    @get("/{tenant_id:int}", summary="One brand's cap and position")
    async def get_one(self, request: Request, tenant_id: TenantIdPath) -> ParticipantRead:
        return await caller_transaction(request, lambda s: service.get_participant(s, tenant_id))

    @patch("/{tenant_id:int}", summary="Change a brand's cap, alarm share or status (suspended: no conversions)")
    async def update(self, request: Request, tenant_id: TenantIdPath, data: JSONBody[ParticipantUpdate]) -> ParticipantRead:
        return await caller_transaction(request, lambda s: service.update_participant(s, tenant_id, data))


class PairController(Controller):
    path = "/v1/admin/exchange/pairs"
    tags = ["operator"]
    guards = [operator_only]

    @post("/", summary="Open a pair: the source brand's points may be converted into the target brand's")
    async def open(self, request: Request, data: JSONBody[PairCreate]) -> PairRead:
        return await caller_transaction(request, lambda s: service.open_pair(s, data))

    @get("/", summary="Every pair")
    async def list_all(self, request: Request) -> list[PairRead]:
        return await caller_transaction(request, service.list_pairs)

    @patch("/{source_tenant_id:int}/{target_tenant_id:int}", summary="Close or reopen a pair")
    async def update(self, request: Request, source_tenant_id: TenantIdPath, target_tenant_id: TenantIdPath,
                     data: JSONBody[PairUpdate]) -> PairRead:
        return await caller_transaction(request, lambda s: service.update_pair(s, source_tenant_id, target_tenant_id, data))


ROUTE_HANDLERS = [ParticipantController, PairController]
