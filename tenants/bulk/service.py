"""A batch of credits and debits, each item on its own: its own idempotency key, its own outcome, and no
item half-applied. The whole batch is a few round trips whatever its size: one query for its members, one
to lock their accounts, one that runs every item's ledger_post_entry() in item order.

Takes a session and never commits: the request's one transaction holds the batch."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import Text, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.db import driver_connection
from alliance.db.tenancy import scoped_tenant_id
from alliance.ledger import AccountKind
from alliance.ledger import service as ledger
from alliance.ledger.schemas import Outcome
from tenants.bulk.schemas import BulkCredit, BulkItem, BulkResult
from tenants.models import Member, Tenant
from tenants.schemas import CreditCreate, DebitCreate

_outcome_decoder = msgspec.json.Decoder(Outcome)


@dataclass(frozen=True, slots=True)
class MemberState:
    status: str
    account_id: int


@dataclass(frozen=True, slots=True)
class PlannedEntry:
    """An item that passed the member checks: `amount` points from `source` to `target`."""

    index: int
    key: str
    request_hash: bytes
    kind: str
    source: int
    target: int
    amount: int
    target_lots: str | None  # the credit's lot, [[expires_at, amount]], as JSON; None: inherit / never expire
    metadata: str
    member_account: int


@dataclass(frozen=True, slots=True)
class SystemAccounts:
    issuance: int
    redemption: int


async def apply_operations(session: AsyncSession, items: list[BulkItem]) -> list[BulkResult]:
    """One result per item, in item order. Items run in item order, so two on one member see each other."""
    tenant = await session.get(Tenant, scoped_tenant_id(session))
    members = await _members_by_external_id(session, sorted({item.member for item in items}))
    conn = await driver_connection(session)
    system = await _system_accounts(conn, tenant)
    now = datetime.now(UTC)
    default_expiry = now + timedelta(days=tenant.expiry_days) if tenant.expiry_days else None
    results: dict[int, BulkResult] = {}
    planned: list[PlannedEntry] = []
    for index, item in enumerate(items):
        refusal = _refusal(item, members.get(item.member), now)
        if refusal is not None:
            results[index] = BulkResult(index, item.idempotency_key, "rejected", error=refusal)
        else:
            planned.append(_plan(index, item, members[item.member].account_id, system, default_expiry))
    if planned:
        await _lock_accounts(conn, tenant.id, planned)
        for entry, raw in zip(planned, await _post_entries(conn, tenant.id, planned), strict=True):
            results[entry.index] = _result(entry, _outcome_decoder.decode(raw))
    return [results[index] for index in range(len(items))]


async def _members_by_external_id(session: AsyncSession, external_ids: list[str]) -> dict[str, MemberState]:
    # FOR SHARE, as the single endpoints: a concurrent freeze waits for this batch, so the statuses read
    # here hold until commit. The session adds the tenant filter.
    rows = await session.execute(
        select(Member.external_id, Member.status, Member.account_id)
        .where(Member.external_id == any_(bindparam("external_ids", external_ids, type_=ARRAY(Text))))
        .with_for_update(read=True)
    )
    return {external_id: MemberState(status, account_id) for external_id, status, account_id in rows}


async def _system_accounts(conn: asyncpg.Connection, tenant: Tenant) -> SystemAccounts:
    # One shard of each system account per batch, any one: a batch then locks one issuance shard, not all
    # of them, so single credits spread over the other shards, and batches over other members, never wait
    # for it.
    spread = random.randrange(2**31)
    issuance = await ledger.system_account(conn, tenant.id, tenant.currency_id, AccountKind.ISSUANCE, spread=spread)
    redemption = await ledger.system_account(conn, tenant.id, tenant.currency_id, AccountKind.REDEMPTION,
                                             spread=spread)
    return SystemAccounts(issuance, redemption)


def _refusal(item: BulkItem, member: MemberState | None, now: datetime) -> dict[str, Any] | None:
    """Why the item cannot reach the ledger, as the single endpoints would answer; None: it can."""
    if member is None:
        return {"code": "member_not_found", "title": "No such member", "member": item.member}
    if member.status != "active":
        return {"code": "member_frozen", "title": "The member is frozen: no points move in or out",
                "member": item.member}
    if isinstance(item, BulkCredit) and item.expires_at is not None and item.expires_at <= now:
        return {"code": "validation_error", "title": "expires_at must be in the future",
                "errors": [{"key": "expires_at", "message": "must be in the future"}]}
    return None


def _request_hash(item: BulkItem) -> bytes:
    """A credit hashes as the single credit endpoint hashes its request, so a key replays across the two.
    A debit hashes its item the same way (the single debit endpoint hashes its legs, whose system shard
    here is the batch's)."""
    if isinstance(item, BulkCredit):
        body = CreditCreate(amount=item.amount, reason=item.reason, expires_at=item.expires_at, metadata=item.metadata)
        return ledger.request_hash("post_entry", request={"credit": item.member, "body": body})
    body = DebitCreate(amount=item.amount, reason=item.reason, metadata=item.metadata)
    return ledger.request_hash("post_entry", request={"debit": item.member, "body": body})


def _plan(
    index: int, item: BulkItem, member_account: int, system: SystemAccounts, default_expiry: datetime | None
) -> PlannedEntry:
    common = {"index": index, "key": item.idempotency_key, "request_hash": _request_hash(item), "amount": item.amount,
              "metadata": msgspec.json.encode({**item.metadata, "reason": item.reason}).decode(),
              "member_account": member_account}
    if isinstance(item, BulkCredit):
        # The default expiry comes from the clock: the hash covers the item as sent instead.
        expires_at = item.expires_at or default_expiry
        lots = None if expires_at is None else msgspec.json.encode([[expires_at, item.amount]]).decode()
        return PlannedEntry(kind="credit", source=system.issuance, target=member_account, target_lots=lots, **common)
    return PlannedEntry(kind="debit", source=member_account, target=system.redemption, target_lots=None, **common)


async def _lock_accounts(conn: asyncpg.Connection, tenant_id: int, planned: list[PlannedEntry]) -> None:
    # Every account the batch moves, locked up front in ascending id order, the order every single
    # operation locks in: in item order, two batches sharing members could deadlock each other.
    accounts = sorted({account for entry in planned for account in (entry.source, entry.target)})
    await conn.execute(
        "SELECT FROM ledger_accounts WHERE tenant_id = $1 AND id = ANY($2::bigint[]) ORDER BY id FOR UPDATE",
        tenant_id, accounts,
    )


async def _post_entries(conn: asyncpg.Connection, tenant_id: int, planned: list[PlannedEntry]) -> list[str]:
    """Every entry's outcome document, in order. Each call is atomic on its own: a rejection is an outcome,
    not an error, and writes nothing but its stored outcome. PostgreSQL calls a volatile function of the
    select list row by row in output order (after a sort, if any; here the scan is already in ordinality
    order), so the calls run in item order and each sees the ones before."""
    rows = await conn.fetch(
        """SELECT ledger_post_entry($1, t.key, t.hash, t.kind, ARRAY[t.source, t.target],
                                    ARRAY[-t.amount, t.amount], ARRAY[NULL, t.target_lots]::jsonb[], t.metadata)::text
           FROM unnest($2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
                       $8::jsonb[], $9::jsonb[])
                WITH ORDINALITY AS t(key, hash, kind, source, target, amount, target_lots, metadata, ord)
           ORDER BY t.ord""",
        tenant_id, [e.key for e in planned], [e.request_hash for e in planned], [e.kind for e in planned],
        [e.source for e in planned], [e.target for e in planned], [e.amount for e in planned],
        [e.target_lots for e in planned], [e.metadata for e in planned],
    )
    return [row[0] for row in rows]


def _result(entry: PlannedEntry, outcome: Outcome) -> BulkResult:
    if not outcome.ok:
        # As the single endpoints' problem documents: the code, its title, the detail members.
        error = {**outcome.detail, "code": outcome.code, "title": outcome.code.replace("_", " ").capitalize()}
        return BulkResult(entry.index, entry.key, "rejected", error=error)
    balance = next((p.balance_after for p in outcome.entry.postings if p.account_id == entry.member_account), None)
    return BulkResult(entry.index, entry.key, "replayed" if outcome.replayed else "applied",
                      entry_id=outcome.entry.id, balance=balance)
