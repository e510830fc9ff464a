"""Operator commands for settlement: `alliance settle close|compute|status|mark-paid|statements|abort|disputes|resolve`,
as tables. Each command is one unit of work, except `compute`, which commits each window on its own (as the nightly
job does), so a long run cut short keeps the windows it finished."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import click
import msgspec
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from alliance.calendar import business_date
from alliance.crypto.platform_key import platform_signer
from alliance.db.oneshot import run_db
from alliance.errors import ProblemError
from alliance.settings import get_settings
from exchange.cli import _money
from settlement import service
from settlement.models import Statement
from settlement.schemas import AbortWindow, DisputeRead, DisputeResolve, PaymentCreate, SettlementRead, WindowRead
from tenants import service as tenants
from tenants.cli import _convert, _run, _table, console

ID = click.IntRange(1, 2**62)
# The keys of a check's mismatch that name brands (by tenant id); the rest are its details.
BRAND_KEYS = ("tenant_id", "source_tenant_id", "target_tenant_id")


def _when(at: datetime | None) -> str:
    return "" if at is None else f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def _fen(fen: int | None) -> str:
    return "" if fen is None else f"{fen:,}"


def _window_line(window: WindowRead) -> str:
    return f"window [bold]{window.id}[/bold] ({window.business_date}): {window.status}"


@click.group()
def settle() -> None:
    """Settlement: the cut-off, the computation and its checks, statements, payments, disputes."""


@settle.command("close")
@click.option("--business-date", "day", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="the window to close, if it is the open one (closed already: nothing changes); absent: the open one")
def settle_close(day: datetime | None) -> None:
    """The cut-off: close the open window; the next opens at once, and late conversions land in it."""
    today = business_date()

    async def work(session):
        closed = await service.close_window(session, business_date=day and day.date(), today=today)
        return service.window_read(closed), service.window_read(await service.open_window(session))

    closed, opened = _run(work)
    table = _table("The cut-off", "window", "business date", "status", "opened (UTC)", "cut-off (UTC)")
    for window in (closed, opened):
        table.add_row(str(window.id), str(window.business_date), window.status, _when(window.opened_at),
                      _when(window.closed_at))
    console.print(table)


@settle.command("compute")
@click.option("--window", "window_id", type=ID,
              help="the window to compute; absent: every closed window not computed yet, oldest first")
def settle_compute(window_id: int | None) -> None:
    """Compute and prove closed windows' settlements; a failed check keeps its report and stops the run."""
    if window_id is None:
        pending = _run(service.closed_window_ids)
        if not pending:
            console.print("no closed window awaits its computation")
            return
    else:
        pending = [window_id]
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        run = progress.add_task("computing", total=len(pending))
        for pending_id in pending:
            progress.update(run, description=f"computing window {pending_id}")
            # Stops at the first failure: a later window's opening positions count this one's.
            _show(_compute(pending_id))
            progress.advance(run)
        progress.update(run, description="computed")


def _compute(window_id: int) -> SettlementRead:
    """Computes the window in a transaction of its own; when its checks fail, keeps the report in another (the
    computation's is rolled back), prints the mismatches and fails the command."""
    try:
        return run_db(lambda s: service.compute_settlement(s, window_id))
    except service.ChecksFailed as failed:
        codes = _run(partial(_keep_failure, failed=failed))
        table = _table(f"Window {window_id}: the checks' mismatches", "check", "brands", "details")
        for mismatch in failed.report["mismatches"]:
            table.add_row(mismatch["check"], _mismatch_brands(mismatch, codes), _mismatch_details(mismatch))
        console.print(table)
        raise click.ClickException(f"{failed.code}: {failed.title}") from None
    except ProblemError as problem:
        raise click.ClickException(f"{problem.code}: {problem.title}") from None


async def _keep_failure(session, failed: service.ChecksFailed) -> dict[int, str]:
    """Records the failure; returns the codes of the brands its mismatches name."""
    await service.record_failure(session, failed)
    return await tenants.brand_codes(session)


def _mismatch_brands(mismatch: dict, codes: dict[int, str]) -> str:
    return " -> ".join(codes.get(mismatch[key], str(mismatch[key])) for key in BRAND_KEYS if mismatch.get(key))


def _mismatch_details(mismatch: dict) -> str:
    return ", ".join(f"{key} {value if isinstance(value, str) else msgspec.json.encode(value).decode()}"
                     for key, value in mismatch.items() if key != "check" and key not in BRAND_KEYS)


def _show(settlement: SettlementRead) -> None:
    """A window's settlement: its flows, adjustments, positions, the operator's fee income and the checks."""
    window = settlement.window
    console.print(f"{_window_line(window)} · cut-off {_when(window.closed_at)} UTC"
                  + (f" · computed {_when(window.computed_at)} UTC · {window.conversions:,} conversions"
                     if window.computed_at else " · not computed yet"))
    if settlement.report is None:
        return
    flows = _table("Flows", "pair", "conversions", "source points", "target points", "gross", "fees", "net")
    for f in settlement.flows:
        flows.add_row(f"{f.source_brand} -> {f.target_brand}", f"{f.conversions:,}", f"{f.source_points:,}",
                      f"{f.target_points:,}", _money(f.gross), _money(f.fees), _money(f.net))
    adjustments = _table("Adjustments", "id", "brand", "from", "amount", "reason", "from window", "dispute")
    for a in settlement.adjustments:
        adjustments.add_row(str(a.id), a.brand, a.counterparty or "operator", _money(a.amount), a.reason,
                            str(a.from_window_id or ""), str(a.dispute_id or ""))
    positions = _table("Positions (+ receives, - pays)", "brand", "paid out", "fees", "received", "adjustments",
                       "net", "net (fen)", "opening (fen)", "closing (fen)", "paid")
    for p in settlement.positions:
        positions.add_row(p.brand, _money(p.paid_out), _money(p.fees), _money(p.received), _money(p.adjustments),
                          _money(p.net), _fen(p.net_fen), _fen(p.opening_fen), _fen(p.closing_fen),
                          p.bank_ref or ("unpaid" if p.net_fen else "nothing due"))
    for table in (flows, adjustments, positions):
        if table.row_count:
            console.print(table)
    if not positions.row_count:
        console.print("no brand has a position in this window: nothing to settle")
    console.print(f"fee income: {_money(window.fee_income)} ({_fen(window.fee_income_fen)} fen)")
    checks = _table("Checks", "check", "result")
    for check, result in settlement.report["checks"].items():
        checks.add_row(check, result)
    console.print(checks)


@settle.command("status")
@click.option("--window", "window_id", type=ID, help="one window's settlement; absent: the recent windows")
@click.option("--limit", type=click.IntRange(1, 365), default=30, show_default=True, help="how many recent windows")
def settle_status(window_id: int | None, limit: int) -> None:
    """The recent windows; with --window, one window's settlement."""
    if window_id is not None:
        _show(_run(lambda s: service.get_settlement(s, window_id)))
        return
    table = _table("Settlement windows (newest first)", "window", "business date", "status", "cut-off (UTC)",
                   "computed (UTC)", "conversions", "fee income")
    for w in _run(lambda s: service.list_windows(s, limit=limit)):
        table.add_row(str(w.id), str(w.business_date), w.status, _when(w.closed_at), _when(w.computed_at),
                      "" if w.conversions is None else f"{w.conversions:,}",
                      "" if w.fee_income is None else _money(w.fee_income))
    console.print(table)


@settle.command("mark-paid")
@click.option("--window", "window_id", type=ID, required=True)
@click.option("--tenant", "code", required=True, help="the brand that paid, or was paid")
@click.option("--bank-ref", required=True, help="the bank's reference of the transfer")
def settle_mark_paid(window_id: int, code: str, bank_ref: str) -> None:
    """Record a brand's payment; the window is settled once every brand with a position is paid."""
    data = _convert({"brand": code, "bank_ref": bank_ref}, PaymentCreate)
    signer = platform_signer(get_settings())

    async def work(session):
        await service.mark_paid(session, signer, window_id, data.brand, data.bank_ref)
        return await service.get_settlement(session, window_id)

    settlement = _run(work)
    unpaid = [p.brand for p in settlement.positions if p.net_fen and p.paid_at is None]
    console.print(f"{code} paid under {data.bank_ref}; {_window_line(settlement.window)}"
                  + (f"; still to pay: {', '.join(unpaid)}" if unpaid else ""))


@settle.command("statements")
@click.option("--window", "window_id", type=ID, required=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="write each brand's latest statement (CSV, PDF) with its detached signature (<file>.jws) here")
def settle_statements(window_id: int, out: Path | None) -> None:
    """Issue the window's statements (those not issued yet), signed by the platform."""
    signer = platform_signer(get_settings())

    async def work(session):
        issued = await service.issue_statements(session, signer, window_id)
        return issued, await service.window_statements(session, window_id)

    issued, latest = _run(work)
    by_brand: dict[str, list[tuple[Statement, int]]] = {}
    for code, statement, net_fen in latest:
        by_brand.setdefault(code, []).append((statement, net_fen))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    table = _table(f"Statements of window {window_id} ({issued} brands got a new one)", "brand", "version",
                   "net (fen)", "files")
    for code, statements in by_brand.items():
        names = []
        for statement, _ in statements:
            if out is not None:
                name = f"statement-{window_id}-{code}-v{statement.version}.{statement.format}"
                (out / name).write_bytes(statement.content)
                (out / f"{name}.jws").write_text(statement.signature)
                names += [name, f"{name}.jws"]
        (statement, net_fen), *_ = statements  # the CSV and the PDF share a version
        table.add_row(code, str(statement.version), _fen(net_fen), "\n".join(names) or "(not written: give --out)")
    console.print(table)


@settle.command("abort")
@click.option("--window", "window_id", type=ID, required=True)
@click.option("--reason", required=True)
def settle_abort(window_id: int, reason: str) -> None:
    """Abandon a computed window before any payment: its flows are carried into the open window."""
    data = _convert({"reason": reason}, AbortWindow)

    async def work(session):
        return service.window_read(await service.abort(session, window_id, data.reason))

    console.print(f"{_window_line(_run(work))}; its flows and adjustments are carried into the open window")


@settle.command("disputes")
@click.option("--status", type=click.Choice(["open", "accepted", "rejected"]), help="only the disputes in it")
def settle_disputes(status: str | None) -> None:
    """Brands' disputes of their statements, newest first."""
    table = _table("Disputes (newest first)", "dispute", "brand", "window", "with", "status", "reason", "resolution",
                   "adjustment", "opened (UTC)")
    for d in _run(lambda s: service.list_disputes(s, status=status)):
        table.add_row(str(d.id), d.brand, str(d.window_id), d.counterparty, d.status, d.reason, d.resolution or "",
                      _adjustment(d), _when(d.created_at))
    console.print(table)


def _adjustment(dispute: DisputeRead) -> str:
    a = dispute.adjustment
    return "" if a is None else f"{a.brand} receives {_money(a.amount)} from {a.counterparty} (adjustment {a.id})"


@settle.command("resolve")
@click.option("--dispute", "dispute_id", type=ID, required=True)
@click.option("--accept/--reject", "accept", default=None, required=True,
              help="accept (with --adjustment-fen) or reject the dispute")
@click.option("--adjustment-fen", type=int,
              help="accepted: what the disputing brand receives from the counterparty (negative: pays it), in fen")
@click.option("--resolution", required=True, help="the decision, as the brands will read it")
def settle_resolve(dispute_id: int, accept: bool, adjustment_fen: int | None, resolution: str) -> None:
    """Reject a dispute, or accept it with an adjustment that lands in the open window."""
    data = _convert({"outcome": "accepted" if accept else "rejected", "resolution": resolution,
                     "adjustment_fen": adjustment_fen}, DisputeResolve)
    dispute = _run(lambda s: service.resolve_dispute(s, dispute_id, data))
    console.print(f"dispute {dispute.id} of {dispute.brand} with {dispute.counterparty} {dispute.status}"
                  + (f": {_adjustment(dispute)}" if dispute.adjustment else ""))
