"""Admitting brands to the exchange, their caps and positions, and the pairs that may convert.

Every function takes a session and never commits. These are the operator's (unscoped sessions), except
`open_window`, which anything that needs the open settlement window may call."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from msgspec import UNSET
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.decimals import plain
from alliance.errors import ProblemError
from exchange.membership.models import Pair, Participant, Position, PositionCredits, Window
from exchange.membership.schemas import (
    PairCreate,
    PairRead,
    PairUpdate,
    ParticipantCreate,
    ParticipantRead,
    ParticipantUpdate,
    PositionRead,
)
from tenants import service as tenants
from tenants.models import Tenant


async def open_window(session: AsyncSession, business_date: date) -> Window:
    """The open settlement window; the first is opened for `business_date` (settlement closes and opens them)."""
    window = await session.scalar(select(Window).where(Window.status == "open"))
    if window is None:
        # Two first admissions at once: one window wins (a unique index allows one open window).
        await session.execute(insert(Window).values(business_date=business_date).on_conflict_do_nothing())
        window = await session.scalar(select(Window).where(Window.status == "open"))
    return window


def participant_read(participant: Participant, position: Position, window: Window, brand: str,
                     credits: Decimal) -> ParticipantRead:
    net_debit = position.reserved + position.debits - credits
    return ParticipantRead(
        tenant_id=participant.tenant_id, brand=brand, status=participant.status,
        net_debit_cap=plain(participant.net_debit_cap), cap_alarm_percent=participant.cap_alarm_percent,
        admitted_at=participant.admitted_at,
        position=PositionRead(
            window_id=window.id, business_date=window.business_date, reserved=plain(position.reserved),
            debits=plain(position.debits), credits=plain(credits), fees=plain(position.fees),
            net_debit=plain(net_debit), available=plain(participant.net_debit_cap - net_debit),
            alarm_raised=position.alarm_raised,
        ),
    )


def _participants():
    credits = (select(func.coalesce(func.sum(PositionCredits.credits), 0))
               .where(PositionCredits.tenant_id == Participant.tenant_id).scalar_subquery())
    return (select(Participant, Position, Window, Tenant.code, credits)
            .join(Position, Position.tenant_id == Participant.tenant_id)
            .join(Window, Window.id == Position.window_id)
            .join(Tenant, Tenant.id == Participant.tenant_id))


async def get_participant(session: AsyncSession, tenant_id: int) -> ParticipantRead:
    row = (await session.execute(_participants().where(Participant.tenant_id == tenant_id))).first()
    if row is None:
        raise ProblemError(404, "participant_not_found", "This brand is not in the exchange",
                           extra={"tenant_id": tenant_id})
    return participant_read(*row)


async def list_participants(session: AsyncSession) -> list[ParticipantRead]:
    rows = await session.execute(_participants().order_by(Participant.tenant_id))
    return [participant_read(*row) for row in rows]


async def admit(session: AsyncSession, data: ParticipantCreate, *, business_date: date) -> ParticipantRead:
    await tenants.get_tenant(session, data.tenant_id)
    created = await session.scalar(
        insert(Participant)
        .values(tenant_id=data.tenant_id, net_debit_cap=data.net_debit_cap, cap_alarm_percent=data.cap_alarm_percent)
        .on_conflict_do_nothing().returning(Participant.tenant_id)
    )
    if created is None:
        raise ProblemError(409, "participant_exists", "This brand is in the exchange already",
                           extra={"tenant_id": data.tenant_id})
    window = await open_window(session, business_date)
    await session.execute(text("SELECT exchange_open_position(:tenant, :window)"),
                          {"tenant": data.tenant_id, "window": window.id})
    return await get_participant(session, data.tenant_id)


async def update_participant(session: AsyncSession, tenant_id: int, data: ParticipantUpdate) -> ParticipantRead:
    # Locked with the position, so a lowered cap applies to the next conversion, not racing one.
    participant = await session.scalar(
        select(Participant).where(Participant.tenant_id == tenant_id).with_for_update())
    if participant is None:
        await get_participant(session, tenant_id)  # raises participant_not_found
    for field in ("status", "net_debit_cap", "cap_alarm_percent"):
        if getattr(data, field) is not UNSET:
            setattr(participant, field, getattr(data, field))
    participant.updated_at = func.now()
    await session.flush()
    return await get_participant(session, tenant_id)


async def _pair_read(session: AsyncSession, pair: Pair, codes: dict[int, str] | None = None) -> PairRead:
    codes = codes or await tenants.brand_codes(session, (pair.source_tenant_id, pair.target_tenant_id))
    return PairRead(source_tenant_id=pair.source_tenant_id, source_brand=codes[pair.source_tenant_id],
                    target_tenant_id=pair.target_tenant_id, target_brand=codes[pair.target_tenant_id],
                    status=pair.status, created_at=pair.created_at, updated_at=pair.updated_at)


async def open_pair(session: AsyncSession, data: PairCreate) -> PairRead:
    """Allows the source brand's points to be converted into the target brand's (one direction); opening an
    existing pair again reopens it."""
    for tenant_id in (data.source_tenant_id, data.target_tenant_id):
        await get_participant(session, tenant_id)
    statement = insert(Pair).values(source_tenant_id=data.source_tenant_id, target_tenant_id=data.target_tenant_id)
    pair = await session.scalar(
        statement.on_conflict_do_update(index_elements=["source_tenant_id", "target_tenant_id"],
                                        set_={"status": "open", "updated_at": func.now()})
        .returning(Pair).execution_options(populate_existing=True)
    )
    return await _pair_read(session, pair)


async def get_pair(session: AsyncSession, source_tenant_id: int, target_tenant_id: int, *, lock: bool = False) -> Pair:
    query = select(Pair).where(Pair.source_tenant_id == source_tenant_id, Pair.target_tenant_id == target_tenant_id)
    pair = await session.scalar(query.with_for_update() if lock else query)
    if pair is None:
        raise ProblemError(404, "pair_not_found", "These brands are not a pair of the exchange",
                           extra={"source_tenant_id": source_tenant_id, "target_tenant_id": target_tenant_id})
    return pair


async def update_pair(session: AsyncSession, source_tenant_id: int, target_tenant_id: int,
                      data: PairUpdate) -> PairRead:
    pair = await get_pair(session, source_tenant_id, target_tenant_id, lock=True)
    pair.status = data.status
    pair.updated_at = func.now()
    await session.flush()
    await session.refresh(pair)
    return await _pair_read(session, pair)


async def list_pairs(session: AsyncSession, tenant_id: int | None = None) -> list[PairRead]:
    """Every pair, or those of one brand (either direction)."""
    query = select(Pair).order_by(Pair.source_tenant_id, Pair.target_tenant_id)
    if tenant_id is not None:
        query = query.where((Pair.source_tenant_id == tenant_id) | (Pair.target_tenant_id == tenant_id))
    pairs = list(await session.scalars(query))
    codes = await tenants.brand_codes(session, (t for p in pairs for t in (p.source_tenant_id, p.target_tenant_id)))
    return [await _pair_read(session, pair, codes) for pair in pairs]

