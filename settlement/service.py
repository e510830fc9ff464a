"""Settlement's steps and reads. Every function takes a session and never commits.

The steps, each idempotent (done already: it answers what it did, changing nothing) and atomic (cut short: nothing
of it stays, and it is run again):
  close_window      the cut-off: the open window closes and the next opens (SQL: settlement_close_window)
  compute           flows, positions, fee income, and the checks that prove them (SQL: settlement_compute)
  issue_statements  each brand's statement, CSV and PDF, signed by the platform
  mark_paid         a brand's payment, with its bank reference; the window is settled when every brand is
and around them: abort (before any payment: the window's flows are carried into the open window) and disputes
(resolved by an adjustment landing in the open window; a closed window is never edited)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.crypto.platform_key import PlatformSigner
from alliance.db import driver_connection
from alliance.db.tenancy import scoped_tenant_id
from alliance.decimals import plain
from alliance.errors import ProblemError
from alliance.ledger import service as ledger
from alliance.worker.outbox import add_event, relay_outbox
from alliance.worker.tasks import enqueue_after_commit
from exchange.membership.models import Window
from exchange.refusals import refusal
from settlement import statements
from settlement.models import Adjustment, Dispute, Failure, Flow, Position, Run, Statement
from settlement.schemas import (
    AdjustmentRead,
    DisputeCreate,
    DisputeRead,
    DisputeResolve,
    FlowRead,
    PositionRead,
    SettlementRead,
    StatementRead,
    WindowRead,
)
from tenants import service as tenants
from tenants.models import Tenant

STATEMENT_TYPE = "alliance-statement+jws"
FEN = Decimal("0.01")


class ChecksFailed(ProblemError):
    """A computation whose checks failed; `report` says which. The caller keeps the report (record_failure) in a
    transaction of its own, since the computation's is rolled back."""

    def __init__(self, window_id: int, report: dict[str, Any]) -> None:
        super().__init__(409, "settlement_checks_failed", "The settlement failed its checks: nothing was kept",
                         "See `report`; the window stays closed, to be computed again once the cause is fixed.",
                         extra={"window_id": window_id, "report": report})
        self.window_id, self.report = window_id, report


async def _tenant_id(session: AsyncSession, code: str) -> int:
    return await tenants.tenant_id_by_code(await driver_connection(session), code)


async def get_window(session: AsyncSession, window_id: int, *, lock: bool = False) -> Window:
    # Fresh: the steps' SQL functions change windows behind the session's back.
    query = select(Window).where(Window.id == window_id).execution_options(populate_existing=True)
    window = await session.scalar(query.with_for_update() if lock else query)
    if window is None:
        raise refusal("window_not_found", {"window_id": window_id})
    return window


async def open_window(session: AsyncSession) -> Window:
    window = await session.scalar(select(Window).where(Window.status == "open"))
    if window is None:
        raise ProblemError(409, "no_open_window", "The exchange has no open window (no brand is admitted yet)")
    return window


def window_read(window: Window, run: Run | None = None) -> WindowRead:
    return WindowRead(
        id=window.id, business_date=window.business_date, status=window.status, opened_at=window.opened_at,
        closed_at=window.closed_at, computed_at=window.computed_at, resolved_at=window.resolved_at,
        conversions=run.conversions if run else None, fee_income=plain(run.fee_income) if run else None,
        fee_income_fen=run.fee_income_fen if run else None,
    )


# --- the steps -------------------------------------------------------------------------------------------------

async def close_window(session: AsyncSession, *, business_date: date | None, today: date) -> Window:
    """Closes the open window (or the one of `business_date`, if it is the open one; if it is closed already,
    nothing changes) and opens the next, for `today` or the day after the closed one. Returns the closed window."""
    if business_date is None:
        business_date = (await open_window(session)).business_date
    outcome = msgspec.json.decode(await (await driver_connection(session)).fetchval(
        "SELECT settlement_close_window($1, $2)::text", business_date, today))
    if not outcome["ok"]:
        raise refusal(outcome["code"], outcome["detail"])
    enqueue_after_commit(session, relay_outbox)  # the window_closed events
    return await session.scalar(select(Window).where(Window.business_date == business_date)
                                .execution_options(populate_existing=True))


async def close_previous_day(session: AsyncSession, today: date) -> Window | None:
    """The nightly cut-off: closes the open window if its business day is over; else nothing."""
    window = await session.scalar(select(Window).where(Window.status == "open"))
    if window is None or window.business_date >= today:
        return None
    return await close_window(session, business_date=window.business_date, today=today)


async def compute(session: AsyncSession, window_id: int) -> None:
    """Computes a closed window's settlement and proves it; a window computed already changes nothing."""
    conn = await driver_connection(session)
    try:
        outcome = msgspec.json.decode(await conn.fetchval("SELECT settlement_compute($1)::text", window_id))
    except asyncpg.PostgresError as failed:
        if failed.sqlstate == "AL002":
            raise ChecksFailed(window_id, msgspec.json.decode(failed.detail)) from None
        raise
    if not outcome["ok"]:
        raise refusal(outcome["code"], outcome["detail"])


async def closed_window_ids(session: AsyncSession) -> list[int]:
    """The windows closed and not computed yet, oldest first: the order they must be computed in."""
    return list(await session.scalars(select(Window.id).where(Window.status == "closed")
                                      .order_by(Window.business_date)))


async def compute_settlement(session: AsyncSession, window_id: int) -> SettlementRead:
    """compute, answered as the window's settlement."""
    await compute(session, window_id)
    return await get_settlement(session, window_id)


async def record_failure(session: AsyncSession, failed: ChecksFailed) -> None:
    session.add(Failure(window_id=failed.window_id, report=failed.report))
    await session.flush()


async def issue_statements(session: AsyncSession, signer: PlatformSigner, window_id: int) -> int:
    """Each brand's statement of a computed window, CSV and PDF, signed; the ones issued already are kept. Returns
    how many brands got a new one."""
    window = await get_window(session, window_id, lock=True)  # two runs at once issue each statement once
    if window.computed_at is None:
        raise ProblemError(409, "window_not_computed", "The window's settlement is not computed yet",
                           extra={"window_id": window_id})
    stated = set(await session.scalars(select(Statement.tenant_id).where(Statement.window_id == window_id)))
    unstated = [position for position in await session.scalars(select(Position).where(Position.window_id == window_id))
                if position.tenant_id not in stated]
    codes = await tenants.brand_codes(session)
    for position in unstated:
        await _issue(session, signer, window, position, version=1, codes=codes)
    return len(unstated)


async def _latest_statement(session: AsyncSession, window_id: int, tenant_id: int) -> Statement | None:
    return await session.scalar(
        select(Statement).where(Statement.window_id == window_id, Statement.tenant_id == tenant_id)
        .order_by(Statement.version.desc()).limit(1))


async def _issue(session: AsyncSession, signer: PlatformSigner, window: Window, position: Position, *,
                 version: int, codes: dict[int, str]) -> None:
    data = await _statement_data(session, window, position, version, codes)
    issued_at = int((position.paid_at or window.computed_at).timestamp())  # deterministic: reissuing gives the same
    for kind, render in (("csv", statements.render_csv), ("pdf", statements.render_pdf)):
        content = render(data)
        session.add(Statement(tenant_id=position.tenant_id, window_id=window.id, format=kind, version=version,
                              content=content,
                              signature=signer.sign_detached(content, typ=STATEMENT_TYPE, issued_at=issued_at, claims={
                                  "alliance_tenant": position.tenant_id, "alliance_window": window.id,
                                  "format": kind, "version": version})))
    await session.flush()
    await add_event(session, tenant_id=position.tenant_id, aggregate_type="settlement_window",
                    aggregate_id=f"{position.tenant_id}:{window.id}", event_type="settlement.statement_ready",
                    payload={"window_id": window.id, "business_date": window.business_date.isoformat(),
                             "version": version, "net_fen": position.net_fen})


async def _statement_data(session: AsyncSession, window: Window, position: Position, version: int,
                          codes: dict[int, str]) -> statements.StatementData:
    tenant = await session.get(Tenant, position.tenant_id)
    flows = list(await session.scalars(select(Flow).where(
        Flow.window_id == window.id,
        (Flow.tenant_id == position.tenant_id) | (Flow.counterparty_tenant_id == position.tenant_id))))
    adjustments = list(await session.scalars(select(Adjustment).where(
        Adjustment.window_id == window.id,
        (Adjustment.tenant_id == position.tenant_id) | (Adjustment.counterparty_tenant_id == position.tenant_id))))
    lines: dict[int, statements.Line] = {}
    for flow in flows:
        out = flow.tenant_id == position.tenant_id
        other = flow.counterparty_tenant_id if out else flow.tenant_id
        line = lines.setdefault(other, statements.Line(counterparty=codes[other]))
        if out:
            line.conversions_out, line.points_out = flow.conversions, flow.source_points
            line.paid, line.fees = flow.gross, flow.fees
        else:
            line.conversions_in, line.points_in, line.received = flow.conversions, flow.target_points, flow.net
    return statements.StatementData(
        brand=tenant.code, brand_name=tenant.name, window_id=window.id, business_date=window.business_date,
        cutoff=window.closed_at, version=version,
        # Every brand with a position converted by the cut-off, with a point value in force then.
        currency=(await ledger.point_value(await driver_connection(session), tenant.id, tenant.currency_id,
                                           window.closed_at)).settlement_currency,
        lines=sorted(lines.values(), key=lambda line: line.counterparty),
        adjustments=[statements.AdjustmentLine(
            counterparty=codes.get(a.counterparty_tenant_id if a.tenant_id == position.tenant_id else a.tenant_id,
                                   "operator"),
            amount=a.amount if a.tenant_id == position.tenant_id else -a.amount, reason=a.reason)
            for a in adjustments],
        paid_out=position.paid_out, fees=position.fees, received=position.received,
        adjustments_total=position.adjustments, net=position.net, net_fen=position.net_fen,
        opening_fen=position.opening_fen, bank_ref=position.bank_ref, paid_at=position.paid_at,
    )


async def mark_paid(session: AsyncSession, signer: PlatformSigner, window_id: int, brand: str,
                    bank_ref: str) -> Window:
    """Records a brand's payment (what it paid, or was paid) with the bank's reference, and reissues its statement
    with it. The window is settled once every brand with a non-zero position is paid. Marking it again with the
    same reference changes nothing."""
    window = await get_window(session, window_id, lock=True)
    if window.status not in ("pending_settlement", "disputed", "settled"):
        raise ProblemError(409, "window_not_payable", "Only a computed window's positions can be paid",
                           extra={"window_id": window_id, "window_status": window.status})
    tenant_id = await _tenant_id(session, brand)
    position = await session.scalar(select(Position).where(Position.window_id == window_id,
                                                          Position.tenant_id == tenant_id).with_for_update())
    if position is None:
        raise ProblemError(404, "position_not_found", "This brand has no position in the window",
                           extra={"window_id": window_id, "brand": brand})
    if position.bank_ref is not None:
        if position.bank_ref != bank_ref:
            raise ProblemError(409, "already_paid", "This position is paid already, under another bank reference",
                               extra={"bank_ref": position.bank_ref})
        return window
    position.bank_ref, position.paid_at = bank_ref, func.now()
    await session.flush()
    await session.refresh(position)
    latest = await _latest_statement(session, window_id, tenant_id)
    await _issue(session, signer, window, position, version=(latest.version + 1) if latest else 1,
                 codes=await tenants.brand_codes(session))
    unpaid = await session.scalar(select(func.count()).select_from(Position).where(
        Position.window_id == window_id, Position.net_fen != 0, Position.paid_at.is_(None)))
    if unpaid == 0 and window.status == "pending_settlement":
        window.status, window.resolved_at = "settled", func.now()
        await session.flush()
        await _announce_to_window(session, window, "settlement.settled")
    await session.refresh(window)
    return window


async def _announce_to_window(session: AsyncSession, window: Window, event_type: str) -> None:
    """The window's event to every brand with a position in it (settlement__announce, as the SQL steps do)."""
    await (await driver_connection(session)).execute(
        "SELECT settlement__announce(w, $2, ARRAY(SELECT tenant_id FROM settlement_positions"
        " WHERE window_id = w.id ORDER BY tenant_id)) FROM exchange_windows w WHERE w.id = $1", window.id, event_type)
    enqueue_after_commit(session, relay_outbox)


async def abort(session: AsyncSession, window_id: int, reason: str) -> Window:
    """Abandons a computed window's settlement before any money is marked paid: its flows and adjustments are
    carried into the open window, to be settled there. The window itself is not edited."""
    window = await get_window(session, window_id, lock=True)
    if window.status not in ("pending_settlement", "disputed"):
        raise ProblemError(409, "window_not_abortable", "Only a computed, unsettled window can be aborted",
                           extra={"window_id": window_id, "window_status": window.status})
    paid = await session.scalar(select(func.count()).select_from(Position).where(
        Position.window_id == window_id, Position.paid_at.is_not(None)))
    if paid:
        raise ProblemError(409, "window_partly_paid", "Money was marked paid in this window: it cannot be aborted",
                           extra={"window_id": window_id, "paid_positions": paid})
    target = await open_window(session)
    carried = f"carried from window {window.id} ({window.business_date}), aborted: {reason}"[:500]
    for flow in await session.scalars(select(Flow).where(Flow.window_id == window_id)):
        # The target brand receives the net from the source, and the source pays the operator the fees.
        session.add(Adjustment(tenant_id=flow.counterparty_tenant_id, counterparty_tenant_id=flow.tenant_id,
                               window_id=target.id, amount=flow.net, reason=carried, from_window_id=window_id))
        if flow.fees:
            session.add(Adjustment(tenant_id=flow.tenant_id, counterparty_tenant_id=None, window_id=target.id,
                                   amount=-flow.fees, reason=carried, from_window_id=window_id))
    for adjustment in await session.scalars(select(Adjustment).where(Adjustment.window_id == window_id)):
        session.add(Adjustment(tenant_id=adjustment.tenant_id, counterparty_tenant_id=adjustment.counterparty_tenant_id,
                               window_id=target.id, amount=adjustment.amount, reason=carried,
                               dispute_id=adjustment.dispute_id, from_window_id=window_id))
    window.status, window.resolved_at = "aborted", func.now()
    await session.flush()
    await _announce_to_window(session, window, "settlement.aborted")
    await session.refresh(window)
    return window


# --- disputes --------------------------------------------------------------------------------------------------

async def open_dispute(session: AsyncSession, data: DisputeCreate, *, dispute_days: int) -> DisputeRead:
    """A brand disputes a line of its statement (its flows with one counterparty) within the dispute period."""
    tenant_id = scoped_tenant_id(session)
    window = await get_window(session, data.window_id, lock=True)
    if window.computed_at is None or window.status == "aborted":
        raise ProblemError(409, "window_not_disputable", "Only a computed, not aborted window can be disputed",
                           extra={"window_id": window.id, "window_status": window.status})
    if datetime.now(UTC) > window.computed_at + timedelta(days=dispute_days):
        raise ProblemError(422, "dispute_period_over", "The period for disputing this window is over",
                           extra={"window_id": window.id, "dispute_days": dispute_days})
    counterparty = await _tenant_id(session, data.counterparty)
    line = await session.scalar(select(func.count()).select_from(Flow).where(
        Flow.window_id == window.id,
        ((Flow.tenant_id == tenant_id) & (Flow.counterparty_tenant_id == counterparty))
        | ((Flow.tenant_id == counterparty) & (Flow.counterparty_tenant_id == tenant_id))))
    if not line:
        raise ProblemError(404, "statement_line_not_found", "The statement has no line with this counterparty",
                           extra={"window_id": window.id, "counterparty": data.counterparty})
    dispute = Dispute(window_id=window.id, counterparty_tenant_id=counterparty, reason=data.reason)
    session.add(dispute)
    if window.status == "pending_settlement":
        window.status = "disputed"
    await session.flush()
    await session.refresh(dispute)
    return await dispute_read(session, dispute)


async def resolve_dispute(session: AsyncSession, dispute_id: int, data: DisputeResolve) -> DisputeRead:
    """The operator's decision: rejected, or accepted with an adjustment that lands in the open window."""
    dispute = await session.scalar(select(Dispute).where(Dispute.id == dispute_id).with_for_update())
    if dispute is None:
        raise ProblemError(404, "dispute_not_found", "No such dispute", extra={"dispute_id": dispute_id})
    if dispute.status != "open":
        raise ProblemError(409, "dispute_resolved", "The dispute is resolved already",
                           extra={"dispute_id": dispute_id, "dispute_status": dispute.status})
    window = await get_window(session, dispute.window_id, lock=True)
    if data.outcome == "accepted":
        adjustment = Adjustment(tenant_id=dispute.tenant_id, counterparty_tenant_id=dispute.counterparty_tenant_id,
                                window_id=(await open_window(session)).id, amount=Decimal(data.adjustment_fen) * FEN,
                                reason=f"dispute {dispute.id}: {data.resolution}"[:500], dispute_id=dispute.id,
                                from_window_id=dispute.window_id)
        session.add(adjustment)
        await session.flush()
        dispute.adjustment_id = adjustment.id
    dispute.status, dispute.resolution, dispute.resolved_at = data.outcome, data.resolution, func.now()
    await session.flush()
    still_open = await session.scalar(select(func.count()).select_from(Dispute).where(
        Dispute.window_id == window.id, Dispute.status == "open"))
    if not still_open and window.status == "disputed":
        window.status = "pending_settlement"
        await session.flush()
    await session.refresh(dispute)
    return await dispute_read(session, dispute)


def adjustment_read(adjustment: Adjustment, codes: dict[int, str]) -> AdjustmentRead:
    return AdjustmentRead(
        id=adjustment.id, brand=codes[adjustment.tenant_id], counterparty=codes.get(adjustment.counterparty_tenant_id),
        amount=plain(adjustment.amount), reason=adjustment.reason, from_window_id=adjustment.from_window_id,
        dispute_id=adjustment.dispute_id,
    )


async def dispute_read(session: AsyncSession, dispute: Dispute, codes: dict[int, str] | None = None) -> DisputeRead:
    codes = codes or await tenants.brand_codes(session)
    adjustment = (await session.get(Adjustment, dispute.adjustment_id)) if dispute.adjustment_id else None
    return DisputeRead(
        id=dispute.id, brand=codes[dispute.tenant_id], window_id=dispute.window_id,
        counterparty=codes[dispute.counterparty_tenant_id], reason=dispute.reason, status=dispute.status,
        resolution=dispute.resolution, adjustment=adjustment and adjustment_read(adjustment, codes),
        created_at=dispute.created_at, resolved_at=dispute.resolved_at,
    )


async def list_disputes(session: AsyncSession, *, status: str | None = None) -> list[DisputeRead]:
    query = select(Dispute).order_by(Dispute.id.desc())
    if status is not None:
        query = query.where(Dispute.status == status)
    codes = await tenants.brand_codes(session)
    return [await dispute_read(session, dispute, codes) for dispute in await session.scalars(query)]


# --- reading ---------------------------------------------------------------------------------------------------

async def list_windows(session: AsyncSession, *, limit: int = 30) -> list[WindowRead]:
    rows = await session.execute(select(Window, Run).outerjoin(Run, Run.window_id == Window.id)
                                 .order_by(Window.business_date.desc()).limit(limit))
    return [window_read(window, run) for window, run in rows]


async def get_settlement(session: AsyncSession, window_id: int) -> SettlementRead:
    window = await get_window(session, window_id)
    run = await session.get(Run, window_id)
    codes = await tenants.brand_codes(session)
    flows = await session.scalars(select(Flow).where(Flow.window_id == window_id)
                                  .order_by(Flow.tenant_id, Flow.counterparty_tenant_id))
    adjustments = await session.scalars(select(Adjustment).where(Adjustment.window_id == window_id)
                                        .order_by(Adjustment.id))
    positions = await session.scalars(select(Position).where(Position.window_id == window_id)
                                      .order_by(Position.tenant_id))
    return SettlementRead(
        window=window_read(window, run),
        flows=[FlowRead(source_brand=codes[f.tenant_id], target_brand=codes[f.counterparty_tenant_id],
                        conversions=f.conversions, source_points=f.source_points, target_points=f.target_points,
                        gross=plain(f.gross), fees=plain(f.fees), net=plain(f.net)) for f in flows],
        adjustments=[adjustment_read(a, codes) for a in adjustments],
        positions=[position_read(p, codes) for p in positions],
        report=run.report if run else None,
    )


def position_read(position: Position, codes: dict[int, str]) -> PositionRead:
    return PositionRead(
        brand=codes[position.tenant_id], paid_out=plain(position.paid_out), fees=plain(position.fees),
        received=plain(position.received), adjustments=plain(position.adjustments), net=plain(position.net),
        net_fen=position.net_fen, opening_fen=position.opening_fen,
        closing_fen=position.opening_fen + position.net_fen, bank_ref=position.bank_ref, paid_at=position.paid_at,
    )


async def list_statements(session: AsyncSession) -> list[StatementRead]:
    """The calling brand's latest statement of each window, newest first."""
    latest = (select(Statement.window_id, func.max(Statement.version).label("version"),
                     func.max(Statement.created_at).label("created_at"))
              .group_by(Statement.window_id).subquery())
    rows = await session.execute(
        select(latest.c.window_id, latest.c.version, latest.c.created_at, Window, Position)
        .join(Window, Window.id == latest.c.window_id)
        .join(Position, Position.window_id == latest.c.window_id)
        .order_by(latest.c.window_id.desc()))
    return [StatementRead(
        window_id=window_id, business_date=window.business_date, window_status=window.status, version=version,
        net_fen=position.net_fen, closing_fen=position.opening_fen + position.net_fen, paid_at=position.paid_at,
        created_at=created_at, csv_url=f"/v1/settlement/statements/{window_id}/csv",
        pdf_url=f"/v1/settlement/statements/{window_id}/pdf") for window_id, version, created_at, window, position in rows]


async def window_statements(session: AsyncSession, window_id: int) -> list[tuple[str, Statement, int]]:
    """The latest statement of each brand of a window, in each format: (brand code, statement, its net in fen)."""
    rows = await session.execute(
        select(Statement, Tenant.code, Position.net_fen)
        .join(Tenant, Tenant.id == Statement.tenant_id)
        .join(Position, (Position.tenant_id == Statement.tenant_id) & (Position.window_id == window_id))
        .where(Statement.window_id == window_id)
        .order_by(Tenant.code, Statement.format, Statement.version.desc())
        .ext(distinct_on(Tenant.code, Statement.format)))
    return [(code, statement, net_fen) for statement, code, net_fen in rows]


async def get_statement(session: AsyncSession, window_id: int, kind: str) -> Statement:
    """The calling brand's latest statement of a window, in one format."""
    statement = await session.scalar(select(Statement).where(Statement.window_id == window_id,
                                                             Statement.format == kind)
                                     .order_by(Statement.version.desc()).limit(1))
    if statement is None:
        raise ProblemError(404, "statement_not_found", "No statement of this window for this brand",
                           extra={"window_id": window_id})
    return statement
