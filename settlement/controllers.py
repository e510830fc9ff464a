"""Settlement's API: the operator's windows (/v1/admin/settlement), and each brand's statements and disputes
(/v1/settlement)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from alliance.auth.guards import brand_only, caller_transaction, operator_only
from alliance.calendar import business_date
from alliance.db import run_in_transaction
from alliance.settings import get_settings
from exchange.signing import SIGNATURE_HEADER
from settlement import service
from settlement.schemas import (
    AbortWindow,
    CloseWindow,
    DisputeCreate,
    DisputeRead,
    DisputeResolve,
    PaymentCreate,
    SettlementRead,
    StatementRead,
    StatementsIssued,
    WindowRead,
)

Id = Annotated[int, PathParameter(ge=1, le=2**62)]
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


class WindowController(Controller):
    path = "/v1/admin/settlement"
    tags = ["operator"]
    guards = [operator_only]

    @get("/windows", summary="Settlement windows, newest first")
    async def list_windows(self, request: Request,
                           limit: Annotated[int, QueryParameter(ge=1, le=365)] = 30) -> list[WindowRead]:
        return await caller_transaction(request, lambda s: service.list_windows(s, limit=limit))

    @post("/windows/close", status_code=200, summary="The cut-off: close the open window (the next opens at once)")
    async def close(self, request: Request, data: JSONBody[CloseWindow]) -> WindowRead:
        today = business_date()

        async def work(session):
            window = await service.close_window(session, business_date=data.business_date, today=today)
            return service.window_read(window)

        return await caller_transaction(request, work)

    @get("/windows/{window_id:int}", summary="A window's settlement: flows, positions, fee income, the checks")
    async def get_one(self, request: Request, window_id: Id) -> SettlementRead:
        return await caller_transaction(request, lambda s: service.get_settlement(s, window_id))

    @post("/windows/{window_id:int}/compute", status_code=200,
          summary="Compute and prove a closed window's settlement (again: answers the first computation)")
    async def compute(self, request: Request, window_id: Id) -> SettlementRead:
        try:
            return await caller_transaction(request, lambda s: service.compute_settlement(s, window_id))
        except service.ChecksFailed as failed:
            # The computation's transaction is rolled back: the report is kept in one of its own, then answered.
            await run_in_transaction(request.app.state.db.sessions, partial(service.record_failure, failed=failed))
            raise

    @post("/windows/{window_id:int}/statements", status_code=200,
          summary="Issue every brand's statement of a computed window (CSV and PDF, signed)")
    async def statements(self, request: Request, window_id: Id) -> StatementsIssued:
        signer = request.app.state.platform_signer
        issued = await caller_transaction(request, lambda s: service.issue_statements(s, signer, window_id))
        return StatementsIssued(window_id=window_id, issued=issued)

    @post("/windows/{window_id:int}/payments", status_code=200,
          summary="Record a brand's payment with its bank reference; the window settles once every brand is paid")
    async def mark_paid(self, request: Request, window_id: Id, data: JSONBody[PaymentCreate]) -> WindowRead:
        signer = request.app.state.platform_signer

        async def work(session):
            return service.window_read(await service.mark_paid(session, signer, window_id, data.brand, data.bank_ref))

        return await caller_transaction(request, work)

    @post("/windows/{window_id:int}/abort", status_code=200,
          summary="Abandon a computed window before any payment: its flows are carried into the open window")
    async def abort(self, request: Request, window_id: Id, data: JSONBody[AbortWindow]) -> WindowRead:
        return await caller_transaction(
            request, lambda s: _read_window(service.abort(s, window_id, data.reason)))

    @get("/disputes", summary="Disputes of every brand, newest first")
    async def disputes(self, request: Request,
                       status: Annotated[Literal["open", "accepted", "rejected"] | None, QueryParameter()] = None,
                       ) -> list[DisputeRead]:
        return await caller_transaction(request, lambda s: service.list_disputes(s, status=status))

    @post("/disputes/{dispute_id:int}/resolve", status_code=200,
          summary="Reject a dispute, or accept it with an adjustment that lands in the open window")
    async def resolve(self, request: Request, dispute_id: Id, data: JSONBody[DisputeResolve]) -> DisputeRead:
        return await caller_transaction(request, lambda s: service.resolve_dispute(s, dispute_id, data))


async def _read_window(done) -> WindowRead:
    return service.window_read(await done)


class StatementController(Controller):
    path = "/v1/settlement"
    tags = ["settlement"]
    guards = [brand_only]

    @get("/statements", summary="This brand's statements, the latest of each window, newest first")
    async def list_statements(self, request: Request) -> list[StatementRead]:
        return await caller_transaction(request, service.list_statements)

    @get("/statements/{window_id:int}/{kind:str}",
         summary="A statement (csv or pdf); the platform's signature over it is the Alliance-Signature header")
    async def download(self, request: Request, window_id: Id,
                       kind: Annotated[Literal["csv", "pdf"], PathParameter()]) -> Response[bytes]:
        statement = await caller_transaction(request, lambda s: service.get_statement(s, window_id, kind))
        return Response(statement.content, media_type=MEDIA_TYPES[kind], headers={
            SIGNATURE_HEADER: statement.signature, "Alliance-Statement-Version": str(statement.version),
            "Content-Disposition": f'attachment; filename="statement-{window_id}-v{statement.version}.{kind}"'})

    @post("/disputes", summary="Dispute a line of a statement (the flows with one counterparty)")
    async def open_dispute(self, request: Request, data: JSONBody[DisputeCreate]) -> DisputeRead:
        days = get_settings().dispute_days
        return await caller_transaction(request, lambda s: service.open_dispute(s, data, dispute_days=days))

    @get("/disputes", summary="This brand's disputes, newest first")
    async def list_disputes(self, request: Request) -> list[DisputeRead]:
        return await caller_transaction(request, service.list_disputes)


ROUTE_HANDLERS = [WindowController, StatementController]
