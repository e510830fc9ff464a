"""Rate cards, the brands' price list and quotes. Rate cards and the price list take a session; a quote is one SQL
call (exchange_quote prices it with the card in force and stores it) on any connection. Nothing here commits."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import msgspec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.db import retry_transient
from alliance.decimals import plain
from alliance.errors import ProblemError
from exchange.membership import service as membership
from exchange.rates.models import RateCard
from exchange.rates.schemas import PriceRead, QuoteCreate, QuoteRead, RateCardCreate, RateCardRead
from exchange.refusals import refusal
from tenants import service as tenants

# A card may say it took effect this long ago (clock skew between the operator and the platform), no earlier:
# an earlier one would reprice conversions already made.
MAX_BACKDATING = timedelta(seconds=60)


def _status(card: RateCard, in_force_id: int | None, now: datetime) -> str:
    if card.effective_at > now:
        return "scheduled"
    return "in_force" if card.id == in_force_id else "superseded"


async def _reads(session: AsyncSession, cards: list[RateCard], now: datetime) -> list[RateCardRead]:
    codes = await tenants.brand_codes(session, (t for c in cards for t in (c.source_tenant_id, c.target_tenant_id)))
    in_force: dict[tuple[int, int], RateCard] = {}
    for card in cards:
        pair = (card.source_tenant_id, card.target_tenant_id)
        if card.effective_at <= now and (pair not in in_force or card.effective_at > in_force[pair].effective_at):
            in_force[pair] = card
    return [
        RateCardRead(
            id=card.id, source_tenant_id=card.source_tenant_id, source_brand=codes[card.source_tenant_id],
            target_tenant_id=card.target_tenant_id, target_brand=codes[card.target_tenant_id], version=card.version,
            effective_at=card.effective_at, rate=None if card.rate is None else plain(card.rate),
            fee_bps=card.fee_bps, min_amount=card.min_amount, max_amount=card.max_amount,
            member_daily_limit=card.member_daily_limit, pair_daily_cap=card.pair_daily_cap,
            quote_ttl_seconds=card.quote_ttl_seconds, created_at=card.created_at,
            status=_status(card, getattr(in_force.get((card.source_tenant_id, card.target_tenant_id)), "id", None),
                           now),
        )
        for card in cards
    ]


async def create_rate_card(session: AsyncSession, data: RateCardCreate) -> RateCardRead:
    """A new version of the pair's rate card, in force from effective_at (now, or announced ahead)."""
    # The pair's row, locked: versions are numbered one at a time.
    await membership.get_pair(session, data.source_tenant_id, data.target_tenant_id, lock=True)
    now = datetime.now(UTC)
    effective_at = data.effective_at or now
    if effective_at < now - MAX_BACKDATING:
        raise ProblemError(422, "validation_error", "A rate card cannot take effect in the past",
                           extra={"errors": [{"key": "effective_at", "message": "is in the past"}]})
    pair_cards = list(await session.scalars(select(RateCard).where(
        RateCard.source_tenant_id == data.source_tenant_id, RateCard.target_tenant_id == data.target_tenant_id)))
    if any(card.effective_at == effective_at for card in pair_cards):
        raise ProblemError(409, "rate_card_effective_at_taken", "The pair has a rate card effective at that instant",
                           extra={"effective_at": effective_at.isoformat()})
    in_force_since = max((card.effective_at for card in pair_cards if card.effective_at <= now), default=None)
    if in_force_since is not None and effective_at < in_force_since:
        raise ProblemError(422, "rate_card_before_card_in_force",
                           "A rate card cannot take effect before the card in force", "It would reprice the past.",
                           extra={"in_force_since": in_force_since.isoformat()})
    if data.rate is not None:
        await _check_rate(session, data, effective_at)
    version = max((card.version for card in pair_cards), default=0) + 1
    card = RateCard(
        source_tenant_id=data.source_tenant_id, target_tenant_id=data.target_tenant_id, version=version,
        effective_at=effective_at, rate=data.rate, fee_bps=data.fee_bps, min_amount=data.min_amount,
        max_amount=data.max_amount, member_daily_limit=data.member_daily_limit, pair_daily_cap=data.pair_daily_cap,
        quote_ttl_seconds=data.quote_ttl_seconds,
    )
    session.add(card)
    await session.flush()
    await session.refresh(card)
    # Its status depends on the pair's other cards.
    return next(read for read in await _reads(session, [*pair_cards, card], now) if read.id == card.id)


async def _check_rate(session: AsyncSession, data: RateCardCreate, at: datetime) -> None:
    """An explicit rate may not give more value than it takes at the point values in force when it takes effect
    (pricing checks it again against the values in force then)."""
    values = (await session.execute(text(
        "SELECT (exchange__point_value(:source, :at)).value, (exchange__point_value(:target, :at)).value"),
        {"source": data.source_tenant_id, "target": data.target_tenant_id, "at": at})).one()
    source_value, target_value = values
    if source_value is None or target_value is None:
        return  # no value yet: pricing refuses until one is set
    if data.rate * target_value > source_value:
        raise ProblemError(422, "rate_exceeds_point_values", "The rate card gives more value than it takes",
                           "rate x target point value must not exceed the source point value.",
                           extra={"rate": str(data.rate), "max_rate": str(plain(source_value / target_value)),
                                  "source_point_value": str(plain(source_value)),
                                  "target_point_value": str(plain(target_value))})


async def list_rate_cards(session: AsyncSession, source_tenant_id: int | None = None,
                          target_tenant_id: int | None = None) -> list[RateCardRead]:
    query = select(RateCard).order_by(RateCard.source_tenant_id, RateCard.target_tenant_id, RateCard.version)
    if source_tenant_id is not None:
        query = query.where(RateCard.source_tenant_id == source_tenant_id)
    if target_tenant_id is not None:
        query = query.where(RateCard.target_tenant_id == target_tenant_id)
    return await _reads(session, list(await session.scalars(query)), datetime.now(UTC))


async def price_list(session: AsyncSession, tenant_id: int) -> list[PriceRead]:
    """The pairs a brand is part of (either direction), each with its card in force and those announced."""
    pairs = await membership.list_pairs(session, tenant_id)
    cards = list(await session.scalars(
        select(RateCard).where((RateCard.source_tenant_id == tenant_id) | (RateCard.target_tenant_id == tenant_id))
        .order_by(RateCard.effective_at)))
    by_pair: dict[tuple[int, int], list[RateCardRead]] = defaultdict(list)
    for read in await _reads(session, cards, datetime.now(UTC)):
        by_pair[read.source_tenant_id, read.target_tenant_id].append(read)
    prices = []
    for pair in pairs:
        reads = by_pair[pair.source_tenant_id, pair.target_tenant_id]
        prices.append(PriceRead(
            source_brand=pair.source_brand, target_brand=pair.target_brand, status=pair.status,
            in_force=next((r for r in reads if r.status == "in_force"), None),
            scheduled=[r for r in reads if r.status == "scheduled"],
        ))
    return prices


class _QuoteRow(msgspec.Struct):
    """A quote as exchange_quote answers it (numbers decoded exactly into Decimals)."""

    id: int
    tenant_id: int
    target_tenant_id: int
    source_amount: int
    fee_amount: int
    target_amount: int
    rate: Decimal
    remainder: Decimal
    source_point_value: Decimal
    target_point_value: Decimal
    currency: str
    gross_value: Decimal
    fee_value: Decimal
    rate_card_version: int
    expires_at: datetime
    created_at: datetime


class _QuoteOutcome(msgspec.Struct):
    ok: bool
    quote: _QuoteRow | None = None
    code: str | None = None
    detail: dict = {}


_quote_outcome = msgspec.json.Decoder(_QuoteOutcome)


async def quote(conn: asyncpg.Connection, tenant_id: int, data: QuoteCreate) -> QuoteRead:
    """Prices data.amount of the brand's points into data.to_brand's by the card in force, and locks that price
    for the card's quote_ttl_seconds."""
    target = await tenants.tenant_id_by_code(conn, data.to_brand)
    outcome = _quote_outcome.decode(await retry_transient(
        conn, lambda: conn.fetchval("SELECT exchange_quote($1, $2, $3)::text", tenant_id, target, data.amount)))
    if not outcome.ok:
        raise refusal(outcome.code, outcome.detail)
    q = outcome.quote
    return QuoteRead(
        id=q.id, source_brand=await tenants.brand_code(conn, q.tenant_id), target_brand=data.to_brand,
        source_amount=q.source_amount, fee_amount=q.fee_amount, target_amount=q.target_amount, rate=plain(q.rate),
        remainder=plain(q.remainder), source_point_value=plain(q.source_point_value),
        target_point_value=plain(q.target_point_value), currency=q.currency.strip(), gross_value=plain(q.gross_value),
        fee_value=plain(q.fee_value), rate_card_version=q.rate_card_version, expires_at=q.expires_at.astimezone(UTC),
        created_at=q.created_at.astimezone(UTC),
    )
