"""Conversions for brands: /v1/conversions. Creating, committing and aborting one are signed by the source brand
(Alliance-Signature) and carry an Idempotency-Key; both brands read it."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from alliance.auth.guards import brand_only, caller_transaction, current_principal, idempotency_key
from alliance.calendar import business_date
from alliance.worker.outbox import relay_soon
from exchange.conversions import service
from exchange.conversions.schemas import (
    ConversionAbort,
    ConversionCommit,
    ConversionCreate,
    ConversionPage,
    ConversionRead,
    Status,
)
from exchange.signing.controllers import signed_request
from tenants import service as tenants

Id = Annotated[int, PathParameter(ge=1, le=2**62)]


async def _answer(request: Request, row: service.ConversionRow, replayed: bool) -> ConversionRead:
    if not replayed:
        relay_soon()  # the SQL wrote both brands' events with the change, which is committed now
    return service.conversion_read(row, viewer=current_principal(request).tenant_id, source_brand=row.source_brand,
                                   target_brand=row.target_brand, signer=request.app.state.platform_signer,
                                   replayed=replayed)


class ConversionController(Controller):
    path = "/v1/conversions"
    tags = ["conversions"]
    guards = [brand_only]

    @post("/", summary="Convert a member's points into another brand's: at once, or reserved (signed; "
                       "Idempotency-Key required)")
    async def create(self, request: Request, data: JSONBody[ConversionCreate]) -> ConversionRead:
        key = idempotency_key(request)
        tenant_id = current_principal(request).tenant_id
        # One connection, no transaction of ours: the conversion is one SQL statement, its own transaction.
        async with request.app.state.db.connection() as conn:
            signed = await signed_request(request, conn)
            target = await tenants.tenant_id_by_code(conn, data.to_brand)
            row, replayed = await service.convert(conn, tenant_id, data, signed, target_tenant_id=target,
                                                  idempotency_key=key, business_date=business_date())
            return await _answer(request, row, replayed)

    @post("/{conversion_id:int}/commit", status_code=200,
          summary="Commit a reserved conversion: both brands' legs at once (signed; Idempotency-Key required)")
    async def commit(self, request: Request, conversion_id: Id, data: JSONBody[ConversionCommit]) -> ConversionRead:
        return await self._resolve(request, conversion_id, None)

    @post("/{conversion_id:int}/abort", status_code=200,
          summary="Abort a reserved conversion: the points are released (signed; Idempotency-Key required)")
    async def abort(self, request: Request, conversion_id: Id, data: JSONBody[ConversionAbort]) -> ConversionRead:
        return await self._resolve(request, conversion_id, data)

    async def _resolve(self, request: Request, conversion_id: int, abort: ConversionAbort | None) -> ConversionRead:
        key = idempotency_key(request)
        async with request.app.state.db.connection() as conn:
            signed = await signed_request(request, conn)
            row, replayed = await service.resolve(conn, current_principal(request).tenant_id, conversion_id, signed,
                                                  abort=abort, idempotency_key=key)
            return await _answer(request, row, replayed)

    @get("/{conversion_id:int}", summary="A conversion of this brand's, as source or target, with the platform's "
                                         "countersignature once committed")
    async def get_one(self, request: Request, conversion_id: Id) -> ConversionRead:
        signer = request.app.state.platform_signer
        return await caller_transaction(request, lambda s: service.get_conversion(s, conversion_id, signer))

    @get("/", summary="This brand's conversions, as source and as target, newest first (cursor paginated)")
    async def list_all(
        self, request: Request,
        cursor: Annotated[str | None, QueryParameter(pattern=r"^[0-9]{1,18}$")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        status: Annotated[Status | None, QueryParameter()] = None,
        role: Annotated[Literal["source", "target"] | None, QueryParameter()] = None,
    ) -> ConversionPage:
        signer = request.app.state.platform_signer
        return await caller_transaction(request, lambda s: service.list_conversions(s, signer, cursor=int(cursor) if cursor else None, limit=limit,
                                               status=status, role=role))


ROUTE_HANDLERS = [ConversionController]
