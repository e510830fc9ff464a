"""Brands, their keys and members, and the value operations a brand performs on its members.

Every function takes a session and never commits. Brand-facing functions read the tenant only from the
session's scope (alliance.db.tenancy), never from their arguments."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from msgspec import UNSET
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.crypto.fields import FieldCipher
from alliance.db import driver_connection
from alliance.db.tenancy import scoped_tenant_id
from alliance.errors import ProblemError
from alliance.ledger import AccountKind, Entry, Hold
from alliance.ledger import service as ledger
from alliance.webhooks import service as webhooks
from tenants.models import Member, Tenant
from tenants.schemas import (
    BalanceRead,
    CreditCreate,
    DebitCreate,
    EntryRead,
    ExpiringPoints,
    GiftCreate,
    HistoryItem,
    HistoryPage,
    HoldCapture,
    HoldCreate,
    HoldRead,
    MemberBalance,
    MemberRead,
    MemberUpdate,
    MemberUpsert,
    OperationRead,
    PostingRead,
    ReversalCreate,
    TenantCreate,
)

# --- operator: brands and keys -------------------------------------------------------------------------


async def create_tenant(session: AsyncSession, data: TenantCreate, *, time_zone: str) -> Tenant:
    if await session.scalar(select(Tenant.id).where(Tenant.code == data.code)) is not None:
        raise ProblemError(409, "tenant_code_taken", "A brand with this code exists", extra={"code": data.code})
    tenant = Tenant(code=data.code, name=data.name, currency_id=0, currency_code=data.currency_code,
                    expiry_days=data.expiry_days)
    session.add(tenant)
    await session.flush()
    conn = await driver_connection(session)
    currency = await ledger.open_currency(conn, tenant.id, data.currency_code)
    tenant.currency_id = currency.id
    effective_from = data.point_value_effective_from or datetime.now(ZoneInfo(time_zone)).date()
    await ledger.set_point_value(
        conn, tenant.id, currency.id, data.point_value,
        effective_at=datetime.combine(effective_from, time_of_day(), ZoneInfo(time_zone)),
        settlement_currency=data.settlement_currency,
    )
    await session.flush()
    return tenant


async def get_tenant(session: AsyncSession, tenant_id: int) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise ProblemError(404, "tenant_not_found", "No such brand", extra={"tenant_id": tenant_id})
    return tenant


async def list_tenants(session: AsyncSession) -> list[Tenant]:
    return list(await session.scalars(select(Tenant).order_by(Tenant.id)))


# --- brand: members ------------------------------------------------------------------------------------


def member_read(member: Member, cipher: FieldCipher) -> MemberRead:
    return MemberRead(
        external_id=member.external_id, status=member.status, nickname=member.nickname,
        phone=cipher.decrypt(member.phone_enc, tenant_id=member.tenant_id, field="phone"),
        birthday=member.birthday,
        address=cipher.decrypt(member.address_enc, tenant_id=member.tenant_id, field="address"),
        created_at=member.created_at,
    )


@dataclass(frozen=True)
class TenantBooks:
    """What a value operation needs to know of its brand; cached per process (it changes rarely)."""

    id: int
    currency_id: int
    expiry_days: int | None


_books: dict[int, tuple[TenantBooks, float]] = {}
BOOKS_TTL_SECONDS = 30.0


async def _tenant_of_session(session: AsyncSession) -> TenantBooks:
    tenant_id = scoped_tenant_id(session)
    cached = _books.get(tenant_id)
    if cached is None or cached[1] < time.monotonic():
        tenant = await session.get(Tenant, tenant_id)
        cached = _books[tenant_id] = (TenantBooks(tenant.id, tenant.currency_id, tenant.expiry_days),
                                      time.monotonic() + BOOKS_TTL_SECONDS)
    return cached[0]


async def upsert_member(session: AsyncSession, cipher: FieldCipher, data: MemberUpsert) -> tuple[Member, bool]:
    """Creates the member (with its points account) or updates the profile fields given; returns
    (member, created)."""
    tenant_id = scoped_tenant_id(session)
    # Two upserts of one new member must not both create it.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, :tenant))"),
                          {"key": "member:" + data.external_id, "tenant": tenant_id})
    member = await session.scalar(select(Member).where(Member.external_id == data.external_id))
    created = member is None
    if created:
        tenant = await _tenant_of_session(session)
        account_id = await ledger.open_member_account(await driver_connection(session), tenant_id, tenant.currency_id)
        member = Member(external_id=data.external_id, account_id=account_id)
        session.add(member)
    _apply_profile(member, cipher, tenant_id, {
        field: getattr(data, field) for field in ("nickname", "phone", "birthday", "address")
        if getattr(data, field) is not None
    })
    await session.flush()
    await session.refresh(member)
    return member, created


def _apply_profile(member: Member, cipher: FieldCipher, tenant_id: int, changes: dict[str, Any]) -> None:
    for field, value in changes.items():
        if field in ("phone", "address"):
            setattr(member, f"{field}_enc", cipher.encrypt(value, tenant_id=tenant_id, field=field))
        else:
            setattr(member, field, value)
    if changes:
        member.updated_at = func.now()


async def get_member(session: AsyncSession, external_id: str, *, lock: bool = False) -> Member:
    query = select(Member).where(Member.external_id == external_id)
    # FOR SHARE: a concurrent freeze waits for this operation, so the status read here holds until commit.
    member = await session.scalar(query.with_for_update(read=True) if lock else query)
    if member is None:
        raise ProblemError(404, "member_not_found", "No such member", extra={"member": external_id})
    return member


async def update_member(session: AsyncSession, cipher: FieldCipher, external_id: str, data: MemberUpdate) -> Member:
    member = await get_member(session, external_id)
    if data.status is not UNSET:
        # Locked, so that two concurrent changes of status announce one change, not two.
        await session.refresh(member, with_for_update=True)
    previous_status = member.status
    changes = {f: getattr(data, f) for f in ("nickname", "phone", "birthday", "address", "status")}
    _apply_profile(member, cipher, member.tenant_id, {k: v for k, v in changes.items() if v is not UNSET})
    await session.flush()
    await session.refresh(member)
    if member.status != previous_status:
        await webhooks.announce(session, "member.frozen" if member.status == "frozen" else "member.unfrozen",
                                external_id)
    return member


# --- brand: moving points ------------------------------------------------------------------------------


async def _active_member(session: AsyncSession, external_id: str):
    """The member's points account, if the member may move points; held FOR SHARE, so a concurrent freeze
    waits for this operation. Only the two columns needed are read (this is every value move's hot path)."""
    row = (await session.execute(
        select(Member.account_id, Member.status).where(Member.external_id == external_id).with_for_update(read=True)
    )).first()
    if row is None:
        raise ProblemError(404, "member_not_found", "No such member", extra={"member": external_id})
    if row.status != "active":
        raise ProblemError(409, "member_frozen", "The member is frozen: no points move in or out",
                           extra={"member": external_id})
    return row


def _metadata(reason: str | None, extra: dict[str, str]) -> dict[str, str]:
    return {**extra, "reason": reason} if reason else dict(extra)


async def credit(session: AsyncSession, external_id: str, data: CreditCreate, *, idempotency_key: str) -> OperationRead:
    tenant = await _tenant_of_session(session)
    member = await _active_member(session, external_id)
    conn = await driver_connection(session)
    expires_at = data.expires_at
    if expires_at is None and tenant.expiry_days:
        expires_at = datetime.now(UTC) + timedelta(days=tenant.expiry_days)
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise ProblemError(422, "validation_error", "expires_at must be in the future",
                           extra={"errors": [{"key": "expires_at", "message": "must be in the future"}]})
    issuance = await ledger.system_account(conn, tenant.id, tenant.currency_id, AccountKind.ISSUANCE,
                                           spread=member.account_id)
    # The default expiry comes from the clock: the key's hash covers the request as sent instead.
    entry = await ledger.transfer(conn, tenant.id, issuance, member.account_id, data.amount, kind="credit",
                                  idempotency_key=idempotency_key, expires_at=expires_at,
                                  metadata=_metadata(data.reason, data.metadata),
                                  request={"credit": external_id, "body": data})
    read = await operation_read(conn, tenant.id, entry, {member.account_id: f"member:{external_id}",
                                                         issuance: "system:issuance"})
    if not entry.replayed:  # a replay was announced the first time
        await webhooks.announce(session, "points.credited", external_id, amount=data.amount, entry_id=entry.id,
                                reason=data.reason, balances=read.balances)
    return read


async def debit(session: AsyncSession, external_id: str, data: DebitCreate, *, idempotency_key: str) -> OperationRead:
    tenant = await _tenant_of_session(session)
    member = await _active_member(session, external_id)
    conn = await driver_connection(session)
    redemption = await ledger.system_account(conn, tenant.id, tenant.currency_id, AccountKind.REDEMPTION,
                                             spread=member.account_id)
    entry = await ledger.transfer(conn, tenant.id, member.account_id, redemption, data.amount, kind="debit",
                                  idempotency_key=idempotency_key, metadata=_metadata(data.reason, data.metadata))
    read = await operation_read(conn, tenant.id, entry, {member.account_id: f"member:{external_id}",
                                                         redemption: "system:redemption"})
    if not entry.replayed:
        await webhooks.announce(session, "points.debited", external_id, amount=data.amount, entry_id=entry.id,
                                reason=data.reason, balances=read.balances)
    return read


async def gift(session: AsyncSession, external_id: str, data: GiftCreate, *, idempotency_key: str) -> OperationRead:
    if data.to == external_id:
        raise ProblemError(422, "validation_error", "A member cannot gift to itself",
                           extra={"errors": [{"key": "to", "message": "must be another member"}]})
    tenant_id = scoped_tenant_id(session)
    # Lock both members in a fixed order, whatever the direction of the gift.
    first, second = sorted((external_id, data.to))
    members = {m: await _active_member(session, m) for m in (first, second)}
    conn = await driver_connection(session)
    entry = await ledger.transfer(conn, tenant_id, members[external_id].account_id, members[data.to].account_id,
                                  data.amount, kind="gift", idempotency_key=idempotency_key,
                                  metadata=_metadata(None, data.metadata))
    read = await operation_read(conn, tenant_id, entry, {members[m].account_id: f"member:{m}" for m in members})
    if not entry.replayed:
        await webhooks.announce(session, "points.gifted", external_id, to=data.to, amount=data.amount,
                                entry_id=entry.id, balances=read.balances)
    return read


async def hold(session: AsyncSession, external_id: str, data: HoldCreate, *, idempotency_key: str) -> HoldRead:
    tenant_id = scoped_tenant_id(session)
    member = await _active_member(session, external_id)
    # The deadline comes from the clock: the key's hash covers the request as sent instead.
    placed = await ledger.hold(
        await driver_connection(session), tenant_id, member.account_id, data.amount,
        expires_at=datetime.now(UTC) + timedelta(seconds=data.expires_in_seconds),
        idempotency_key=idempotency_key, metadata=_metadata(data.reason, data.metadata),
        request={"hold": external_id, "body": data},
    )
    if not placed.replayed:
        await webhooks.announce(session, "hold.created", external_id, hold_id=placed.id, amount=placed.amount,
                                expires_at=placed.expires_at)
    return hold_read(placed, external_id)


def hold_read(placed: Hold, external_id: str) -> HoldRead:
    return HoldRead(id=placed.id, member=external_id, amount=placed.amount, status=placed.status,
                    expires_at=placed.expires_at, created_at=placed.created_at,
                    captured=placed.posted_amount, entry_id=placed.entry_id, replayed=placed.replayed)


async def _hold_owner(conn: asyncpg.Connection, tenant_id: int, hold_id: int) -> tuple[str, int] | None:
    row = await conn.fetchrow(
        """SELECT m.external_id, m.status FROM ledger_holds h
           JOIN members m ON m.tenant_id = h.tenant_id AND m.account_id = h.account_id
           WHERE h.tenant_id = $1 AND h.id = $2""",
        tenant_id, hold_id,
    )
    return None if row is None else (row["external_id"], row["status"])


async def capture_hold(session: AsyncSession, hold_id: int, data: HoldCapture, *, idempotency_key: str) -> OperationRead:
    tenant = await _tenant_of_session(session)
    conn = await driver_connection(session)
    owner = await _hold_owner(conn, tenant.id, hold_id)
    if owner is None:
        raise ProblemError(404, "hold_not_found", "No such hold", extra={"hold_id": hold_id})
    member = await _active_member(session, owner[0])
    redemption = await ledger.system_account(conn, tenant.id, tenant.currency_id, AccountKind.REDEMPTION,
                                             spread=member.account_id)
    entry, captured = await ledger.post_hold(conn, tenant.id, hold_id, redemption, amount=data.amount,
                                             idempotency_key=idempotency_key, metadata=_metadata(None, data.metadata))
    read = await operation_read(conn, tenant.id, entry, {member.account_id: f"member:{owner[0]}",
                                                         redemption: "system:redemption"})
    if not entry.replayed:
        await webhooks.announce(session, "hold.captured", owner[0], hold_id=hold_id, amount=captured.posted_amount,
                                entry_id=entry.id, balances=read.balances)
    return read


async def release_hold(session: AsyncSession, hold_id: int, *, idempotency_key: str) -> HoldRead:
    tenant_id = scoped_tenant_id(session)
    conn = await driver_connection(session)
    owner = await _hold_owner(conn, tenant_id, hold_id)
    if owner is None:
        raise ProblemError(404, "hold_not_found", "No such hold", extra={"hold_id": hold_id})
    released = await ledger.void_hold(conn, tenant_id, hold_id, idempotency_key=idempotency_key)
    if not released.replayed:
        await webhooks.announce(session, "hold.released", owner[0], hold_id=hold_id, amount=released.amount)
    return hold_read(released, owner[0])


async def reverse(session: AsyncSession, entry_id: int, data: ReversalCreate, *, idempotency_key: str) -> OperationRead:
    tenant_id = scoped_tenant_id(session)
    conn = await driver_connection(session)
    entry = await ledger.reverse_entry(conn, tenant_id, entry_id, idempotency_key=idempotency_key,
                                       metadata=_metadata(data.reason, data.metadata))
    read = await operation_read(conn, tenant_id, entry)
    if not entry.replayed and read.balances:
        # Told as the first member's event; `balances` names every member the reversal touched.
        await webhooks.announce(session, "points.reversed", read.balances[0].member, entry_id=entry.id,
                                reverses_entry_id=entry.reverses_entry_id, reason=data.reason,
                                balances=read.balances)
    return read


# --- brand: reading ------------------------------------------------------------------------------------


async def _account_names(conn: asyncpg.Connection, tenant_id: int, account_ids: list[int]) -> dict[int, str]:
    rows = await conn.fetch(
        """SELECT a.id, a.kind, m.external_id FROM ledger_accounts a
           LEFT JOIN members m ON m.tenant_id = a.tenant_id AND m.account_id = a.id
           WHERE a.tenant_id = $1 AND a.id = ANY($2)""",
        tenant_id, account_ids,
    )
    return {r["id"]: f"member:{r['external_id']}" if r["external_id"] else f"system:{r['kind']}" for r in rows}


async def entry_read(
    conn: asyncpg.Connection, tenant_id: int, entry: Entry, known: dict[int, str] | None = None
) -> EntryRead:
    """`known`: names of accounts the caller already knows ("member:alice", "system:issuance"), to spare
    the look-up."""
    names = known or {}
    if any(p.account_id not in names for p in entry.postings):
        names = await _account_names(conn, tenant_id, [p.account_id for p in entry.postings])
    return EntryRead(
        id=entry.id, kind=entry.kind, created_at=entry.created_at, metadata=entry.metadata,
        reverses_entry_id=entry.reverses_entry_id,
        postings=[PostingRead(names[p.account_id], p.amount, p.balance_after) for p in entry.postings],
    )


async def operation_read(
    conn: asyncpg.Connection, tenant_id: int, entry: Entry, known: dict[int, str] | None = None
) -> OperationRead:
    read = await entry_read(conn, tenant_id, entry, known)
    balances = [MemberBalance(p.account.removeprefix("member:"), p.balance_after)
                for p in read.postings if p.account.startswith("member:")]
    return OperationRead(entry=read, balances=balances, replayed=entry.replayed)


async def get_entry(session: AsyncSession, entry_id: int) -> EntryRead:
    tenant_id = scoped_tenant_id(session)
    conn = await driver_connection(session)
    entry = await ledger.get_entry(conn, tenant_id, entry_id)
    if entry is None:
        raise ProblemError(404, "entry_not_found", "No such journal entry", extra={"entry_id": entry_id})
    return await entry_read(conn, tenant_id, entry)


async def balance(
    session: AsyncSession, external_id: str, *, expiring_within_days: int, at: datetime | None, time_zone: str
) -> BalanceRead:
    tenant_id = scoped_tenant_id(session)
    member = await get_member(session, external_id)
    conn = await driver_connection(session)
    if at is not None:
        past = await ledger.balance_at(conn, tenant_id, member.account_id, at)
        return BalanceRead(member=external_id, balance=past, held=0, available=past, expiring=[], as_of=at)
    current = await ledger.account_balance(conn, tenant_id, member.account_id)
    lots = await ledger.expiring_lots(conn, tenant_id, member.account_id,
                                      until=datetime.now(UTC) + timedelta(days=expiring_within_days))
    by_day: dict[date, int] = {}
    for lot in lots:
        day = lot.expires_at.astimezone(ZoneInfo(time_zone)).date()
        by_day[day] = by_day.get(day, 0) + lot.remaining
    return BalanceRead(
        member=external_id, balance=current.balance, held=current.held, available=current.available,
        expiring=[ExpiringPoints(day, amount) for day, amount in sorted(by_day.items())],
    )


async def history(
    session: AsyncSession, external_id: str, *, cursor: int | None, limit: int,
    since: datetime | None, until: datetime | None, kind: str | None,
) -> HistoryPage:
    tenant_id = scoped_tenant_id(session)
    member = await get_member(session, external_id)
    lines = await ledger.history(await driver_connection(session), tenant_id, member.account_id,
                                 before_version=cursor, limit=limit + 1, since=since, until=until, kind=kind)
    page = lines[:limit]
    return HistoryPage(
        data=[HistoryItem(line.entry_id, line.kind, line.posting.amount, line.posting.balance_after,
                          line.posting.posted_at) for line in page],
        next_cursor=str(page[-1].posting.version_after) if len(lines) > limit else None,
    )


# --- brands by code: codes never change, so each process keeps what it has looked up ---------------------

_ids_by_code: dict[str, int] = {}
_codes_by_id: dict[int, str] = {}


async def tenant_id_by_code(conn: asyncpg.Connection, code: str) -> int:
    """The id of the brand with this code (how brands name each other), or brand_not_found."""
    tenant_id = _ids_by_code.get(code)
    if tenant_id is None:
        tenant_id = await conn.fetchval("SELECT id FROM tenants WHERE code = $1", code)
        if tenant_id is None:
            raise ProblemError(404, "brand_not_found", "No brand has this code", extra={"brand": code})
        _ids_by_code[code], _codes_by_id[tenant_id] = tenant_id, code
    return tenant_id


async def brand_codes(session: AsyncSession, tenant_ids: Iterable[int] | None = None) -> dict[int, str]:
    """Brands' codes by id, of every brand or of those named: for reads that name many brands at once."""
    query = select(Tenant.id, Tenant.code)
    if tenant_ids is not None:
        query = query.where(Tenant.id.in_(set(tenant_ids)))
    return dict((await session.execute(query)).all())


async def brand_code(conn: asyncpg.Connection, tenant_id: int) -> str:
    code = _codes_by_id.get(tenant_id)
    if code is None:
        code = await conn.fetchval("SELECT code FROM tenants WHERE id = $1", tenant_id)
        _ids_by_code[code], _codes_by_id[tenant_id] = tenant_id, code
    return code
