"""The ledger's operations. Each takes an asyncpg connection and never commits: inside the caller's
transaction it joins it, alone it is one atomic statement (every value move is a single SQL function call,
so one round trip). Rejections raise LedgerRejected with a named code; they are stored under the
idempotency key like successes, so a retry gets the same answer."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec

from alliance.ledger.schemas import (
    SYSTEM_KINDS,
    AccountBalance,
    AccountKind,
    Currency,
    Entry,
    HistoryLine,
    Hold,
    LedgerRejected,
    Leg,
    Lot,
    Outcome,
    PointValue,
    Posting,
    Rejection,
)

# Hot system accounts are split into this many rows each (new currencies; existing ones keep theirs).
DEFAULT_SYSTEM_SHARDS = 32

_encoder = msgspec.json.Encoder(order="sorted")
_outcome_decoder = msgspec.json.Decoder(Outcome)


def request_hash(operation: str, **params: Any) -> bytes:
    """Canonical hash of a request: same operation and parameters, same bytes, whatever the key order."""
    return hashlib.sha256(_encoder.encode([operation, params])).digest()


def _json(value: Any) -> str | None:
    return None if value is None else _encoder.encode(value).decode()


# Outcomes are read as ::text so every connection (plain asyncpg, or SQLAlchemy's with its own jsonb codec)
# hands msgspec the same bytes.
def _unwrap(raw: str) -> Outcome:
    outcome = _outcome_decoder.decode(raw)
    if not outcome.ok:
        raise LedgerRejected(Rejection(outcome.code), outcome.detail, replayed=outcome.replayed)
    if outcome.replayed:
        return msgspec.structs.replace(
            outcome,
            entry=outcome.entry and msgspec.structs.replace(outcome.entry, replayed=True),
            hold=outcome.hold and msgspec.structs.replace(outcome.hold, replayed=True),
        )
    return outcome


# --- currencies and accounts --------------------------------------------------------------------------

async def open_currency(
    conn: asyncpg.Connection, tenant_id: int, code: str, *, system_shards: int = DEFAULT_SYSTEM_SHARDS
) -> Currency:
    """A tenant's points currency with its system accounts (every kind, `system_shards` rows each)."""
    row = await conn.fetchrow(
        "INSERT INTO ledger_currencies (tenant_id, code, system_shards) VALUES ($1, $2, $3) RETURNING id",
        tenant_id, code, system_shards,
    )
    await conn.execute(
        """INSERT INTO ledger_accounts (tenant_id, currency_id, kind, shard, non_negative)
           SELECT $1, $2, kind, shard, false FROM unnest($3::text[]) kind, generate_series(0, $4 - 1) shard""",
        tenant_id, row["id"], [k.value for k in SYSTEM_KINDS], system_shards,
    )
    return Currency(tenant_id=tenant_id, id=row["id"], code=code, system_shards=system_shards)


async def open_member_account(conn: asyncpg.Connection, tenant_id: int, currency_id: int) -> int:
    return await conn.fetchval(
        """INSERT INTO ledger_accounts (tenant_id, currency_id, kind, non_negative)
           VALUES ($1, $2, 'member', true) RETURNING id""",
        tenant_id, currency_id,
    )


# Shard ids never change once created, so each process keeps them after the first look-up.
_system_shards: dict[tuple[int, int, str], list[int]] = {}


async def system_account(
    conn: asyncpg.Connection, tenant_id: int, currency_id: int, kind: AccountKind, *, spread: int
) -> int:
    """The shard of a system account that `spread` (usually the member account's id) maps to."""
    key = (tenant_id, currency_id, kind.value)
    shards = _system_shards.get(key)
    if shards is None:
        shards = [
            r["id"]
            for r in await conn.fetch(
                """SELECT id FROM ledger_accounts WHERE tenant_id = $1 AND currency_id = $2 AND kind = $3
                   ORDER BY shard""",
                tenant_id, currency_id, kind.value,
            )
        ]
        if not shards:
            raise LedgerRejected(Rejection.ACCOUNT_NOT_FOUND, {"currency_id": currency_id, "kind": kind.value})
        _system_shards[key] = shards
    return shards[spread % len(shards)]


async def set_point_value(
    conn: asyncpg.Connection, tenant_id: int, currency_id: int, value: Decimal, *,
    effective_at: datetime, settlement_currency: str = "CNY",
) -> None:
    await conn.execute(
        """INSERT INTO ledger_currency_values (tenant_id, currency_id, effective_at, value, settlement_currency)
           VALUES ($1, $2, $3, $4, $5)""",
        tenant_id, currency_id, effective_at, value, settlement_currency,
    )


async def point_value(conn: asyncpg.Connection, tenant_id: int, currency_id: int, at: datetime) -> PointValue | None:
    row = await conn.fetchrow(
        """SELECT value, settlement_currency, effective_at FROM ledger_currency_values
           WHERE tenant_id = $1 AND currency_id = $2 AND effective_at <= $3
           ORDER BY effective_at DESC LIMIT 1""",
        tenant_id, currency_id, at,
    )
    return None if row is None else PointValue(row["value"], row["settlement_currency"].strip(), row["effective_at"])


# --- moving value ---------------------------------------------------------------------------------------

async def post_entry(
    conn: asyncpg.Connection, tenant_id: int, legs: Sequence[Leg], *,
    kind: str, idempotency_key: str | None = None, metadata: dict[str, Any] | None = None,
    request: Any = None,
) -> Entry:
    """One balanced journal entry: the legs must sum to zero per currency; member accounts never go
    below what they hold. `request`, when given, is what the idempotency key's hash covers instead of
    the legs (for callers whose legs carry values derived from the clock, such as a default expiry)."""
    lots = [None if leg.expires_at is None else [[leg.expires_at, leg.amount]] for leg in legs]
    raw = await conn.fetchval(
        "SELECT ledger_post_entry($1, $2, $3, $4, $5, $6, $7::jsonb[], $8)::text",
        tenant_id, idempotency_key,
        request_hash("post_entry", request=request) if request is not None
        else request_hash("post_entry", kind=kind, legs=legs, metadata=metadata),
        kind,
        [leg.account_id for leg in legs],
        [leg.amount for leg in legs],
        [_json(x) for x in lots],
        _json(metadata),
    )
    return _unwrap(raw).entry


async def transfer(
    conn: asyncpg.Connection, tenant_id: int, from_account: int, to_account: int, amount: int, *,
    kind: str = "transfer", idempotency_key: str | None = None,
    metadata: dict[str, Any] | None = None, expires_at: datetime | None = None, request: Any = None,
) -> Entry:
    if amount <= 0:
        raise LedgerRejected(Rejection.INVALID_AMOUNT, {"amount": amount})
    legs = (Leg(from_account, -amount), Leg(to_account, amount, expires_at))
    return await post_entry(conn, tenant_id, legs, kind=kind, idempotency_key=idempotency_key, metadata=metadata,
                            request=request)


async def hold(
    conn: asyncpg.Connection, tenant_id: int, account_id: int, amount: int, *,
    expires_at: datetime, idempotency_key: str | None = None, metadata: dict[str, Any] | None = None,
    request: Any = None,
) -> Hold:
    """Reserves points: they stay in the balance but are no longer available, until posted, voided or
    expired. `request`: as for post_entry."""
    raw = await conn.fetchval(
        "SELECT ledger_hold($1, $2, $3, $4, $5, $6, $7)::text",
        tenant_id, idempotency_key,
        request_hash("hold", request=request) if request is not None
        else request_hash("hold", account_id=account_id, amount=amount, expires_at=expires_at, metadata=metadata),
        account_id, amount, expires_at, _json(metadata),
    )
    return _unwrap(raw).hold


async def post_hold(
    conn: asyncpg.Connection, tenant_id: int, hold_id: int, to_account: int, *,
    amount: int | None = None, kind: str = "capture", idempotency_key: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[Entry, Hold]:
    """Captures a pending hold (all of it, or `amount` of it) into `to_account`; the rest is released."""
    raw = await conn.fetchval(
        "SELECT ledger_post_hold($1, $2, $3, $4, $5, $6, $7, $8)::text",
        tenant_id, idempotency_key,
        request_hash("post_hold", hold_id=hold_id, to_account=to_account, amount=amount, kind=kind,
                     metadata=metadata),
        hold_id, amount, to_account, kind, _json(metadata),
    )
    outcome = _unwrap(raw)
    return outcome.entry, outcome.hold


async def void_hold(
    conn: asyncpg.Connection, tenant_id: int, hold_id: int, *, idempotency_key: str | None = None
) -> Hold:
    raw = await conn.fetchval(
        "SELECT ledger_void_hold($1, $2, $3, $4)::text",
        tenant_id, idempotency_key, request_hash("void_hold", hold_id=hold_id), hold_id,
    )
    return _unwrap(raw).hold


async def reverse_entry(
    conn: asyncpg.Connection, tenant_id: int, entry_id: int, *,
    idempotency_key: str | None = None, metadata: dict[str, Any] | None = None,
) -> Entry:
    """Undoes an entry with a new linked one, at most once; refused if it would overdraw a member."""
    raw = await conn.fetchval(
        "SELECT ledger_reverse_entry($1, $2, $3, $4, $5)::text",
        tenant_id, idempotency_key, request_hash("reverse_entry", entry_id=entry_id, metadata=metadata),
        entry_id, _json(metadata),
    )
    return _unwrap(raw).entry


async def expire_lots(conn: asyncpg.Connection, now: datetime, *, batch: int = 500) -> int:
    """Moves what is left of lots past their deadline to the expiry accounts, one batch of accounts;
    returns how many accounts were expired (call until 0)."""
    return await conn.fetchval("SELECT ledger_expire_lots($1, $2)", now, batch)


async def expire_holds(conn: asyncpg.Connection, now: datetime, *, batch: int = 500) -> int:
    return await conn.fetchval("SELECT ledger_expire_holds($1, $2)", now, batch)


# --- reading --------------------------------------------------------------------------------------------

async def account_balance(conn: asyncpg.Connection, tenant_id: int, account_id: int) -> AccountBalance:
    row = await conn.fetchrow(
        "SELECT id, kind, balance, held, version FROM ledger_accounts WHERE tenant_id = $1 AND id = $2",
        tenant_id, account_id,
    )
    if row is None:
        raise LedgerRejected(Rejection.ACCOUNT_NOT_FOUND, {"account_ids": [account_id]})
    return AccountBalance(
        account_id=row["id"], kind=row["kind"], balance=row["balance"], held=row["held"],
        available=row["balance"] - row["held"], version=row["version"],
    )


async def balance_at(conn: asyncpg.Connection, tenant_id: int, account_id: int, at: datetime) -> int:
    """The balance right after the last posting at or before `at`: one index look-up, no re-summing."""
    value = await conn.fetchval(
        """SELECT balance_after FROM ledger_postings
           WHERE tenant_id = $1 AND account_id = $2 AND posted_at <= $3
           ORDER BY posted_at DESC, version_after DESC LIMIT 1""",
        tenant_id, account_id, at,
    )
    return value or 0


async def history(
    conn: asyncpg.Connection, tenant_id: int, account_id: int, *,
    before_version: int | None = None, limit: int = 50,
    since: datetime | None = None, until: datetime | None = None, kind: str | None = None,
) -> list[HistoryLine]:
    """An account's postings, newest first; page with before_version (the last line's version_after);
    filter by posting time [since, until) and entry kind."""
    rows = await conn.fetch(
        """SELECT p.entry_id, e.kind, p.account_id, p.amount, p.balance_after, p.version_after, p.posted_at
           FROM ledger_postings p JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id
           WHERE p.tenant_id = $1 AND p.account_id = $2 AND p.version_after < $3
             AND ($5::timestamptz IS NULL OR p.posted_at >= $5) AND ($6::timestamptz IS NULL OR p.posted_at < $6)
             AND ($7::text IS NULL OR e.kind = $7)
           ORDER BY p.version_after DESC LIMIT $4""",
        tenant_id, account_id, before_version or 2**62, limit, since, until, kind,
    )
    return [
        HistoryLine(r["entry_id"], r["kind"], Posting(r["account_id"], r["amount"], r["balance_after"],
                                                      r["version_after"], r["posted_at"]))
        for r in rows
    ]


async def get_entry(conn: asyncpg.Connection, tenant_id: int, entry_id: int) -> Entry | None:
    entry = await conn.fetchrow(
        "SELECT id, kind, created_at, metadata::text, reverses_entry_id FROM ledger_entries WHERE tenant_id = $1 AND id = $2",
        tenant_id, entry_id,
    )
    if entry is None:
        return None
    postings = await conn.fetch(
        """SELECT account_id, amount, balance_after, version_after, posted_at FROM ledger_postings
           WHERE tenant_id = $1 AND entry_id = $2 ORDER BY id""",
        tenant_id, entry_id,
    )
    return Entry(
        id=entry["id"], kind=entry["kind"], created_at=entry["created_at"],
        postings=[Posting(**dict(p)) for p in postings], metadata=msgspec.json.decode(entry["metadata"]),
        reverses_entry_id=entry["reverses_entry_id"],
    )


async def expiring_lots(
    conn: asyncpg.Connection, tenant_id: int, account_id: int, *, until: datetime
) -> list[Lot]:
    """Open lots with a deadline before `until`, soonest first."""
    rows = await conn.fetch(
        """SELECT expires_at, remaining FROM ledger_lots
           WHERE tenant_id = $1 AND account_id = $2 AND remaining > 0 AND expires_at < $3 ORDER BY expires_at""",
        tenant_id, account_id, until,
    )
    return [Lot(r["expires_at"], r["remaining"]) for r in rows]


async def open_lots(conn: asyncpg.Connection, tenant_id: int, account_id: int) -> list[Lot]:
    rows = await conn.fetch(
        """SELECT expires_at, remaining FROM ledger_lots
           WHERE tenant_id = $1 AND account_id = $2 AND remaining > 0 ORDER BY expires_at NULLS LAST""",
        tenant_id, account_id,
    )
    return [Lot(r["expires_at"], r["remaining"]) for r in rows]
