"""Operator commands for the exchange: `alliance exchange participants|pairs|rate-cards …`, as tables."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import click

from alliance.calendar import business_date
from exchange.membership import service as membership
from exchange.membership.schemas import PairCreate, PairUpdate, ParticipantCreate, ParticipantRead, ParticipantUpdate
from exchange.rates import service as rates
from exchange.rates.schemas import RateCardCreate
from tenants.cli import _convert, _run, _table, _tenant_by_code, console


async def _brand_ids(session, *codes: str | None) -> list[int | None]:
    return [None if code is None else (await _tenant_by_code(session, code)).id for code in codes]


def _pair(command):
    """--source and --target (applied innermost first, so --help lists --source first)."""
    command = click.option("--target", required=True, help="code of the brand whose points they become")(command)
    return click.option("--source", required=True, help="code of the brand whose points are converted")(command)


CAP_HELP = "net debit cap in the settlement currency, e.g. 50000.00"
ALARM_HELP = "share of the cap (%) at which the alarm fires"


@click.group()
def exchange() -> None:
    """The exchange: its participants, pairs and rate cards."""


@exchange.group()
def participants() -> None:
    """Brands admitted to the exchange, with their net debit caps and positions in the open window."""


def _money(value: Decimal) -> str:
    """Exact, in cents at least: positions carry up to 12 decimal places (fees are bps of amounts)."""
    return f"{value:,.{max(2, -value.as_tuple().exponent)}f}"


@participants.command("list")
def participants_list() -> None:
    rows = _run(membership.list_participants)
    table = _table("Participants", "brand", "status", "cap", "net debit", "available", "used", "reserved", "debits",
                   "credits", "fees", "alarm", "window")
    for p in rows:
        position = p.position
        used = f"{position.net_debit * 100 / p.net_debit_cap:.1f}%" if p.net_debit_cap else "-"
        table.add_row(p.brand, p.status, _money(p.net_debit_cap), _money(position.net_debit),
                      _money(position.available), used, _money(position.reserved), _money(position.debits),
                      _money(position.credits), _money(position.fees),
                      f"{p.cap_alarm_percent}%" + (" raised" if position.alarm_raised else ""),
                      f"{position.business_date}")
    console.print(table)


def _terms(p: ParticipantRead) -> str:
    return f"{p.status}, net debit cap {_money(p.net_debit_cap)}, alarm at {p.cap_alarm_percent}%"


@participants.command("admit")
@click.option("--brand", "code", required=True, help="the brand's code")
@click.option("--cap", required=True, help=CAP_HELP)
@click.option("--alarm-percent", type=int, help=ALARM_HELP)
def participants_admit(code: str, cap: str, alarm_percent: int | None) -> None:
    async def work(session):
        (tenant_id,) = await _brand_ids(session, code)
        data = _convert({"tenant_id": tenant_id, "net_debit_cap": cap, "cap_alarm_percent": alarm_percent},
                        ParticipantCreate)
        return await membership.admit(session, data, business_date=business_date())

    participant = _run(work)
    console.print(f"brand [bold]{participant.brand}[/bold] admitted to the exchange: {_terms(participant)}")


@participants.command("update")
@click.option("--brand", "code", required=True, help="the brand's code")
@click.option("--cap", help=CAP_HELP)
@click.option("--alarm-percent", type=int, help=ALARM_HELP)
@click.option("--status", type=click.Choice(["active", "suspended"]), help="suspended: no conversions")
def participants_update(code: str, cap: str | None, alarm_percent: int | None, status: str | None) -> None:
    data = _convert({"net_debit_cap": cap, "cap_alarm_percent": alarm_percent, "status": status}, ParticipantUpdate)
    if data == ParticipantUpdate():
        raise click.UsageError("Nothing to change: give --cap, --alarm-percent or --status.")

    async def work(session):
        (tenant_id,) = await _brand_ids(session, code)
        return await membership.update_participant(session, tenant_id, data)

    participant = _run(work)
    console.print(f"brand [bold]{participant.brand}[/bold]: {_terms(participant)}")


@exchange.group()
def pairs() -> None:
    """Directions in which one brand's points may be converted into another's."""


@pairs.command("list")
def pairs_list() -> None:
    rows = _run(membership.list_pairs)
    table = _table("Pairs", "source", "target", "status", "since", "changed")
    for pair in rows:
        table.add_row(pair.source_brand, pair.target_brand, pair.status, f"{pair.created_at:%Y-%m-%d %H:%M}",
                      f"{pair.updated_at:%Y-%m-%d %H:%M}")
    console.print(table)


@pairs.command("open")
@_pair
def pairs_open(source: str, target: str) -> None:
    """Open the pair (or reopen it, if closed)."""

    async def work(session):
        source_id, target_id = await _brand_ids(session, source, target)
        data = _convert({"source_tenant_id": source_id, "target_tenant_id": target_id}, PairCreate)
        return await membership.open_pair(session, data)

    pair = _run(work)
    console.print(f"pair {pair.source_brand} -> {pair.target_brand} {pair.status}")


@pairs.command("close")
@_pair
def pairs_close(source: str, target: str) -> None:
    async def work(session):
        source_id, target_id = await _brand_ids(session, source, target)
        return await membership.update_pair(session, source_id, target_id, PairUpdate(status="closed"))

    pair = _run(work)
    console.print(f"pair {pair.source_brand} -> {pair.target_brand} {pair.status}")


@exchange.group("rate-cards")
def rate_cards() -> None:
    """The pairs' prices: each change is a new version, in force from its effective time."""


@rate_cards.command("list")
@click.option("--source", default=None, help="only the cards of this source brand")
@click.option("--target", default=None, help="only the cards of this target brand")
def rate_cards_list(source: str | None, target: str | None) -> None:
    async def work(session):
        return await rates.list_rate_cards(session, *await _brand_ids(session, source, target))

    rows = _run(work)
    table = _table("Rate cards", "pair", "version", "effective at (UTC)", "rate", "fee (bps)", "min", "max",
                   "member daily", "pair daily", "quote ttl (s)", "status")
    for card in rows:
        table.add_row(f"{card.source_brand} -> {card.target_brand}", str(card.version),
                      f"{card.effective_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
                      "derived" if card.rate is None else str(card.rate), str(card.fee_bps), f"{card.min_amount:,}",
                      f"{card.max_amount:,}", _limit(card.member_daily_limit), _limit(card.pair_daily_cap),
                      str(card.quote_ttl_seconds), card.status)
    console.print(table)


def _limit(points: int | None) -> str:
    return "none" if points is None else f"{points:,}"


@rate_cards.command("create")
@_pair
@click.option("--rate", help="target points per source point, e.g. 2 or 0.125; absent: derived from point values")
@click.option("--fee-bps", "fee_bps", type=int, help="fee in basis points of the source amount")
@click.option("--min", "min_amount", type=int, help="fewest source points per conversion")
@click.option("--max", "max_amount", type=int, help="most source points per conversion")
@click.option("--member-daily-limit", "member_daily_limit", type=int, help="source points a member may convert a day")
@click.option("--pair-daily-cap", "pair_daily_cap", type=int, help="source points the pair may convert a day")
@click.option("--effective-at", "effective_at", help="ISO-8601 with an offset, e.g. 2027-01-31T16:00:00Z; absent: now")
@click.option("--quote-ttl", "quote_ttl_seconds", type=int, help="seconds a quote holds its price")
def rate_cards_create(source: str, target: str, **card) -> None:
    """Publish a new version of the pair's rate card."""

    async def work(session):
        source_id, target_id = await _brand_ids(session, source, target)
        data = _convert({"source_tenant_id": source_id, "target_tenant_id": target_id, **card}, RateCardCreate)
        return await rates.create_rate_card(session, data)

    created = _run(work)
    rate = "derived" if created.rate is None else created.rate
    console.print(f"rate card v{created.version} of {created.source_brand} -> {created.target_brand}, "
                  f"{created.status} from {created.effective_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC: rate {rate}, "
                  f"fee {created.fee_bps} bps")
