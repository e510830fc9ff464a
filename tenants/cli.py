"""Operator commands for brands, their keys and members: `alliance tenants|keys|members …`, as tables."""

from __future__ import annotations

from typing import TypeVar

import click
import msgspec
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from alliance.auth import service as key_service
from alliance.auth.keys import KeyKind
from alliance.db import driver_connection
from alliance.db.oneshot import run_db
from alliance.db.tenancy import scope_to_tenant
from alliance.errors import ProblemError
from alliance.ledger import service as ledger
from alliance.settings import get_settings
from tenants import service
from tenants.models import Member, Tenant
from tenants.schemas import TenantCreate

console = Console()


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


S = TypeVar("S", bound=msgspec.Struct)


def _convert(fields: dict, schema: type[S]) -> S:
    """The options given (None: not given, so the schema's default or UNSET applies) as the API's Struct. Amounts
    of money and rates arrive as text: msgspec reads them into exact Decimals (never a float), and a malformed one
    is a validation_error like any other."""
    try:  # convert, not construct: constraints are checked only when converting
        return msgspec.convert({k: v for k, v in fields.items() if v is not None}, schema)
    except msgspec.ValidationError as invalid:
        raise click.ClickException(f"validation_error: {invalid}") from None


def _run(work):
    """run_db, with a refusal printed as its problem code instead of a traceback."""
    try:
        return run_db(work)
    except ProblemError as problem:
        raise click.ClickException(f"{problem.code}: {problem.title}") from None


async def _tenant_by_code(session, code: str) -> Tenant:
    tenant = await session.scalar(select(Tenant).where(Tenant.code == code))
    if tenant is None:
        raise ProblemError(404, "tenant_not_found", f"No brand with code {code!r}")
    return tenant


@click.group()
def tenants() -> None:
    """Brands of the alliance."""


@tenants.command("list")
def tenants_list() -> None:
    rows = _run(service.list_tenants)
    table = _table("Brands", "id", "code", "name", "status", "currency", "expiry (days)", "since")
    for t in rows:
        table.add_row(str(t.id), t.code, t.name, t.status, t.currency_code, str(t.expiry_days or "never"),
                      f"{t.created_at:%Y-%m-%d}")
    console.print(table)


@tenants.command("create")
@click.option("--code", required=True, help="lowercase slug, e.g. coffee-chain")
@click.option("--name", required=True)
@click.option("--currency", "currency_code", required=True, help="points currency code, e.g. BEANS")
@click.option("--point-value", required=True, help="worth of one point in the settlement currency, e.g. 0.10")
@click.option("--expiry-days", type=int, default=None, help="credits expire after this many days")
def tenants_create(code: str, name: str, currency_code: str, point_value: str, expiry_days: int | None) -> None:
    data = _convert({"code": code, "name": name, "currency_code": currency_code, "point_value": point_value,
                     "expiry_days": expiry_days}, TenantCreate)
    tenant = _run(lambda s: service.create_tenant(s, data, time_zone=get_settings().time_zone))
    console.print(f"brand [bold]{tenant.code}[/bold] admitted with id {tenant.id}")


@click.group()
def keys() -> None:
    """Brands' API keys."""


@keys.command("list")
@click.option("--tenant", "code", required=True, help="the brand's code")
def keys_list(code: str) -> None:
    async def work(session):
        return await key_service.list_keys(session, (await _tenant_by_code(session, code)).id)

    rows = _run(work)
    table = _table(f"API keys of {code}", "key id", "name", "created", "revoked")
    for k in rows:
        table.add_row(k.key_id, k.name, f"{k.created_at:%Y-%m-%d %H:%M}",
                      f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "")
    console.print(table)


@keys.command("create")
@click.option("--tenant", "code", required=True)
@click.option("--name", required=True)
def keys_create(code: str, name: str) -> None:
    async def work(session):
        tenant = await _tenant_by_code(session, code)
        return await key_service.create_key(session, kind=KeyKind.BRAND, name=name, tenant_id=tenant.id)

    key, issued = _run(work)
    console.print(f"key {key.key_id} for {code}; keep it secret, it is shown only now:")
    click.echo(issued.secret)


@keys.command("revoke")
@click.option("--tenant", "code", required=True)
@click.argument("key_id")
def keys_revoke(code: str, key_id: str) -> None:
    async def work(session):
        return await key_service.revoke_key(session, (await _tenant_by_code(session, code)).id, key_id)

    _run(work)
    console.print(f"key {key_id} revoked")


@click.group()
def members() -> None:
    """A brand's members."""


@members.command("list")
@click.option("--tenant", "code", required=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def members_list(code: str, limit: int) -> None:
    async def work(session):
        tenant = await _tenant_by_code(session, code)
        scope_to_tenant(session, tenant.id)
        rows = list(await session.scalars(select(Member).order_by(Member.id).limit(limit)))
        conn = await driver_connection(session)
        return [(m, await ledger.account_balance(conn, tenant.id, m.account_id)) for m in rows]

    rows = _run(work)
    table = _table(f"Members of {code}", "member", "status", "balance", "held", "available", "since")
    for member, balance in rows:
        table.add_row(member.external_id, member.status, f"{balance.balance:,}", f"{balance.held:,}",
                      f"{balance.available:,}", f"{member.created_at:%Y-%m-%d}")
    console.print(table)


@members.command("show")
@click.option("--tenant", "code", required=True)
@click.argument("external_id")
@click.option("--history", "lines", type=click.IntRange(1, 200), default=10, show_default=True)
def members_show(code: str, external_id: str, lines: int) -> None:
    async def work(session):
        tenant = await _tenant_by_code(session, code)
        scope_to_tenant(session, tenant.id)
        balance = await service.balance(session, external_id, expiring_within_days=30, at=None,
                                        time_zone=get_settings().time_zone)
        page = await service.history(session, external_id, cursor=None, limit=lines, since=None, until=None,
                                     kind=None)
        return balance, page

    balance, page = _run(work)
    console.print(f"[bold]{external_id}[/bold] at {code}: balance {balance.balance:,} · held {balance.held:,} "
                  f"· available {balance.available:,}")
    if balance.expiring:
        console.print("expiring soon: " + ", ".join(f"{e.amount:,} on {e.date}" for e in balance.expiring))
    table = _table("History (newest first)", "entry", "kind", "amount", "balance after", "at")
    for item in page.data:
        table.add_row(str(item.entry_id), item.kind, f"{item.amount:+,}", f"{item.balance_after:,}",
                      f"{item.posted_at:%Y-%m-%d %H:%M:%S}")
    console.print(table)
