"""Settlement of one day's conversions: the cut-off and the compute step, timed, with their peak memory.

    uv run python -m bench.settlement [--conversions 1000000 | --sizes 100000,1000000] [--persons 2000] [--explain]

For each size (by default 1/10 of --conversions, then --conversions), on a fresh, migrated database:
1. The database: ALLIANCE_DATABASE_URL if set, else an embedded PostgreSQL under .alliance/bench. A fresh
   database `alliance_bench` is created there and migrated.
2. The data, in bulk SQL (INSERT ... SELECT over generate_series, in batches, with progress): 50 brands, each
   with its tenant row, a points currency opened by `ledger.open_currency` (its system accounts, 32 shards per
   kind), a point value, admission to the exchange with its position and credit shards
   (`exchange_open_position`) and a signing key; all 2,450 directed pairs with a rate card; persons who are
   members of every brand (ledger accounts, members, one alliance identity each, linked at every brand), each
   membership funded by a credit entry; then N conversions committed in the open window between random brands,
   each row by row what `exchange_convert` writes for a conversion made at once: the conversion (committed,
   priced as `exchange__price_amounts` prices it), its two journal entries (conversion_out in the source
   brand, conversion_in in the target brand) of two postings each with running balances, versions and lots,
   and its effect on the running positions (debits and fees of the source, a credit shard of the target).
   Not written: the signed requests, webhook events and idempotency records of each conversion, which
   settlement never reads. The ledger's deferred "entry is balanced" trigger is disabled for the load (one
   check per posting at commit) and enabled again after it; one query then checks every entry, and another
   that each account's balance and version are the sum and count of its postings.
3. The measured steps, each on a fresh connection, called as settlement/service.py calls them:
   `settlement_close_window` (the cut-off) and `SELECT settlement_compute($1)::text` (the compute step). For
   each: wall time, the PostgreSQL backend's CPU and all of PostgreSQL's (parallel workers included), peak
   memory sampled every 20 ms (the backend's RSS and its private part, any parallel workers', this Python
   process's), and the temporary files written (pg_stat_database). The compute's report must say ok, with no
   mismatches.
4. A table with both sizes side by side, the verdicts (compute <= 10 s at 1,000,000 conversions; PostgreSQL's
   private peak memory at the larger size <= 1.2 x at the smaller), JSON results in bench/out/ and a Markdown
   snippet for bench/RESULTS.md. The command exits with 1 if a load check or a computation failed.

--explain also runs the compute once before the measured call, in a transaction it rolls back, with
auto_explain logging every statement inside it (EXPLAIN ANALYZE, BUFFERS): it prints how long each took, and
the plan of the slowest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import psutil
from alliance_sdk.signing import generate_signing_key

from alliance.db.engine import asyncpg_dsn
from alliance.ledger import service as ledger
from bench.common import (
    BENCH_DATABASE,
    CpuMeter,
    Report,
    backing_server,
    checkpoint,
    console,
    count_progress,
    document_head,
    facts_and_meter,
    fresh_database,
    parse_with,
    publish,
    sampling,
    with_database,
)

BRANDS = 50
TIME_ZONE = ZoneInfo("Asia/Shanghai")  # the alliance's default: business days are its days
SETTLEMENT_CURRENCY = "CNY"
FEE_BPS = 50
AMOUNTS = (10, 100)  # source points per conversion, uniform; 10 points less the fee still buy a target point
FUNDING = 10**9  # each membership's credit: more than all its conversions could ever take out
NET_DEBIT_CAP = Decimal("1000000000000")  # never reached
BATCH = 50_000  # conversions per load transaction
SAMPLE_SECONDS = 0.02
WORKER_SCAN_EVERY = 5  # samples between two looks for parallel workers (listing processes costs CPU)
LOAD_WORK_MEM = "128MB"  # the loading session's only; the measured calls run with the server's settings
TARGET_CONVERSIONS = 1_000_000
TARGET_SECONDS = 10.0
TARGET_MEMORY_GROWTH = 1.2
MB = 2**20
EXPLAIN_LISTED = 12


def point_value(index: int) -> Decimal:
    """Brand i's point value (CNY), from 0.025 to 0.20 in equal ratios: the pairs convert at rates from x8 to
    x0.125, as in bench.exchange."""
    return round(Decimal("0.025") * Decimal(8) ** (Decimal(index) / (BRANDS - 1)), 6)


# --- results ----------------------------------------------------------------------------------------------


@dataclass
class Measured:
    """One measured call. Memory: RSS counts the shared buffers the backend touched (they are the server's,
    not the call's, and grow with the data read up to shared_buffers); private = RSS - shared pages, what the
    call itself allocated (sorts, hashes, caches). None where the server is not on this machine."""

    step: str
    seconds: float
    backend_cpu_seconds: float | None
    server_cpu_seconds: float | None  # all PostgreSQL processes: the backend, parallel workers, background ones
    backend_idle_private_mb: float | None  # the backend before the call
    backend_peak_rss_mb: float | None
    backend_peak_private_mb: float | None
    workers_peak_private_mb: float | None  # parallel workers of the backend, together, at their peak
    pg_peak_private_mb: float | None  # backend + its parallel workers, at the same sample
    parallel_workers: int
    python_peak_rss_mb: float
    temp_files: int
    temp_mb: float
    samples: int


@dataclass
class SizeRun:
    conversions: int
    persons: int
    load_seconds: float
    load_phases: dict[str, float]
    load_checks: dict
    data_mb: dict[str, float]
    close: Measured
    compute: Measured
    compute_ok: bool
    compute_report: dict
    explain: list[dict] = field(default_factory=list)
    explain_seconds: float | None = None


# --- loading ----------------------------------------------------------------------------------------------


@dataclass
class Alliance:
    window_id: int
    business_date: date
    opened_at: datetime
    system_shards: int


class Phases:
    """The load's phases, each shown while it runs and timed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        with console.status(name):
            yield
        self.seconds[name] = round(time.perf_counter() - started, 2)
        console.print(f"  {name}: {self.seconds[name]:.1f} s")


async def reserve_ids(conn: asyncpg.Connection, table: str, count: int) -> int:
    """The first of `count` consecutive ids of `table`'s identity column, taken from its sequence (which moves
    past them), so rows loaded with those ids leave the sequence where the application expects it."""
    return await conn.fetchval(
        "SELECT setval(s, nextval(s) + $2 - 1) - $2 + 1 FROM pg_get_serial_sequence($1, 'id') s", table, count
    )


BRAND_TABLES = """
CREATE TEMP TABLE bench_brands (idx int PRIMARY KEY, tenant_id bigint, currency_id bigint, value numeric, kid text);
CREATE TEMP TABLE bench_system (idx int, kind text, shard int, account_id bigint, PRIMARY KEY (idx, kind, shard));
CREATE TEMP TABLE bench_rates (source_idx int, target_idx int, rate_card_id bigint, rate numeric,
                               PRIMARY KEY (source_idx, target_idx));
CREATE TEMP TABLE bench_persons (p int PRIMARY KEY, external_id text, public_id text);
"""


async def set_up_brands(conn: asyncpg.Connection, business_date: date) -> Alliance:
    """The brands as the operator API makes them (tenants.service.create_tenant, exchange admission, rate cards,
    signing keys), and the open window, opened at the start of `business_date`."""
    opened_at = datetime.combine(business_date, time_of_day(), TIME_ZONE)
    before = opened_at - timedelta(days=1)
    await conn.execute(BRAND_TABLES)
    window_id = await conn.fetchval(
        "INSERT INTO exchange_windows (business_date, opened_at) VALUES ($1, $2) RETURNING id", business_date, opened_at
    )
    shards = ledger.DEFAULT_SYSTEM_SHARDS
    for idx in range(BRANDS):
        code = f"brand-{idx:02d}"
        tenant_id = await conn.fetchval(
            "INSERT INTO tenants (code, name, currency_id, currency_code, created_at) VALUES ($1, $2, 0, $3, $4)"
            " RETURNING id", code, f"Brand {idx:02d}", f"PT{idx:02d}", before,
        )  # fmt: skip
        currency = await ledger.open_currency(conn, tenant_id, f"PT{idx:02d}")
        shards = currency.system_shards
        await conn.execute("UPDATE tenants SET currency_id = $2 WHERE id = $1", tenant_id, currency.id)
        await ledger.set_point_value(conn, tenant_id, currency.id, point_value(idx), effective_at=before,
                                     settlement_currency=SETTLEMENT_CURRENCY)  # fmt: skip
        await conn.execute(
            "INSERT INTO exchange_participants (tenant_id, net_debit_cap, admitted_at, updated_at) VALUES ($1, $2, $3, $3)",
            tenant_id, NET_DEBIT_CAP, before,
        )  # fmt: skip
        await conn.execute("SELECT exchange_open_position($1, $2)", tenant_id, window_id)
        kid = f"{code}-k1"
        await conn.execute(
            "INSERT INTO signing_keys (tenant_id, kid, public_jwk, not_before) VALUES ($1, $2, $3::jsonb, $4)",
            tenant_id, kid, json.dumps(generate_signing_key()[1]), before,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO bench_brands VALUES ($1, $2, $3, $4, $5)", idx, tenant_id, currency.id, point_value(idx), kid
        )
    await conn.execute("""
        INSERT INTO bench_system SELECT b.idx, a.kind, a.shard, a.id FROM bench_brands b
          JOIN ledger_accounts a ON a.tenant_id = b.tenant_id AND a.currency_id = b.currency_id AND a.kind <> 'member'
    """)  # fmt: skip
    # Every directed pair open, each with a rate card deriving its rate from the point values (rate NULL), as
    # exchange__price does: trunc(source value / target value, 12).
    await conn.execute("""
        INSERT INTO exchange_pairs (source_tenant_id, target_tenant_id, created_at, updated_at)
        SELECT s.tenant_id, t.tenant_id, $1, $1 FROM bench_brands s JOIN bench_brands t ON t.idx <> s.idx
    """, before)  # fmt: skip
    await conn.execute(f"""
        INSERT INTO exchange_rate_cards (source_tenant_id, target_tenant_id, version, effective_at, rate, fee_bps,
                                         min_amount, max_amount, created_at)
        SELECT source_tenant_id, target_tenant_id, 1, $1, NULL, {FEE_BPS}, 1, 1000000000000, $1 FROM exchange_pairs
    """, before)  # fmt: skip
    await conn.execute("""
        INSERT INTO bench_rates
        SELECT s.idx, t.idx, c.id, trunc(s.value / t.value, 12) FROM exchange_rate_cards c
          JOIN bench_brands s ON s.tenant_id = c.source_tenant_id JOIN bench_brands t ON t.tenant_id = c.target_tenant_id
    """)  # fmt: skip
    return Alliance(window_id=window_id, business_date=business_date, opened_at=opened_at, system_shards=shards)


# One statement writes a set of postings (`legs`: id, tenant_id, entry_id, account_id, amount, posted_at, lots)
# as the ledger writes them, each with its account's running balance and version (the account's current ones
# plus the legs' running sum and count, in id order), and moves the accounts' balances and versions on.
POST_LEGS = """
WITH legs (id, tenant_id, entry_id, account_id, amount, posted_at, lots) AS ({legs}),
posted AS (
    INSERT INTO ledger_postings (tenant_id, id, entry_id, account_id, currency_id, amount, balance_after,
                                 version_after, posted_at, lots) OVERRIDING SYSTEM VALUE
    SELECT l.tenant_id, l.id, l.entry_id, l.account_id, a.currency_id, l.amount,
           a.balance + sum(l.amount) OVER running, a.version + row_number() OVER running, l.posted_at, l.lots
      FROM legs l JOIN ledger_accounts a ON a.tenant_id = l.tenant_id AND a.id = l.account_id
    WINDOW running AS (PARTITION BY l.tenant_id, l.account_id ORDER BY l.id)
    RETURNING tenant_id, account_id, amount
)
UPDATE ledger_accounts a SET balance = a.balance + m.moved, version = a.version + m.postings
  FROM (SELECT tenant_id, account_id, sum(amount) AS moved, count(*) AS postings FROM posted GROUP BY 1, 2) m
 WHERE a.tenant_id = m.tenant_id AND a.id = m.account_id
"""


async def set_up_members(conn: asyncpg.Connection, alliance: Alliance, persons: int) -> int:
    """Each person a member of every brand (ledger account, member row, linked to their one alliance identity),
    each membership funded by a credit entry from its issuance shard. Returns the first member account id: brand
    i's member of person p has account first + i x persons + p."""
    at = alliance.opened_at - timedelta(days=1)
    first = await reserve_ids(conn, "ledger_accounts", BRANDS * persons)
    await conn.execute(f"""
        INSERT INTO bench_persons
        SELECT p, 'person-' || lpad(p::text, 7, '0'),
               'idn_' || translate(left(md5('bench-person-' || p), 16), '0189', 'wxyz')  -- [a-z2-7]{{16}}
          FROM generate_series(0, {persons - 1}) p
    """)  # fmt: skip
    await conn.execute(f"""
        INSERT INTO ledger_accounts (tenant_id, id, currency_id, kind, non_negative, created_at) OVERRIDING SYSTEM VALUE
        SELECT b.tenant_id, {first} + b.idx * {persons} + x.p, b.currency_id, 'member', true, $1
          FROM bench_brands b CROSS JOIN bench_persons x ORDER BY 2
    """, at)  # fmt: skip
    await conn.execute(f"""
        INSERT INTO members (tenant_id, external_id, account_id, created_at, updated_at)
        SELECT b.tenant_id, x.external_id, {first} + b.idx * {persons} + x.p, $1, $1
          FROM bench_brands b CROSS JOIN bench_persons x ORDER BY 3
    """, at)  # fmt: skip
    await conn.execute("INSERT INTO alliance_identities (public_id, created_at) SELECT public_id, $1 FROM bench_persons"
                       " ORDER BY p", at)  # fmt: skip
    await conn.execute("""
        INSERT INTO alliance_links (tenant_id, external_id, identity_id, linked_at)
        SELECT b.tenant_id, x.external_id, i.id, $1
          FROM bench_brands b CROSS JOIN bench_persons x JOIN alliance_identities i ON i.public_id = x.public_id
    """, at)  # fmt: skip
    # The funding: entry k (k = i x persons + p) credits membership k from its issuance shard (account % shards).
    entries = await reserve_ids(conn, "ledger_entries", BRANDS * persons)
    postings = await reserve_ids(conn, "ledger_postings", 2 * BRANDS * persons)
    await conn.execute(f"""
        INSERT INTO ledger_entries (tenant_id, id, kind, idempotency_key, metadata, created_at) OVERRIDING SYSTEM VALUE
        SELECT b.tenant_id, {entries} + b.idx * {persons} + x.p, 'credit', 'bench-fund-' || x.external_id, '{{}}', $1
          FROM bench_brands b CROSS JOIN bench_persons x ORDER BY 2
    """, at)  # fmt: skip
    fundings = f"""
        SELECT b.idx * {persons} + x.p AS k, b.tenant_id, b.idx, {first} + b.idx * {persons} + x.p AS account_id
          FROM bench_brands b CROSS JOIN bench_persons x
    """
    await conn.execute(POST_LEGS.format(legs=f"""
        SELECT {postings} + 2 * f.k, f.tenant_id, {entries} + f.k, s.account_id, -{FUNDING}::bigint,
               $1::timestamptz, NULL::jsonb
          FROM ({fundings}) f JOIN bench_system s ON s.idx = f.idx AND s.kind = 'issuance'
                                                 AND s.shard = f.account_id % {alliance.system_shards}
        UNION ALL
        SELECT {postings} + 2 * f.k + 1, f.tenant_id, {entries} + f.k, f.account_id, {FUNDING}, $1, NULL
          FROM ({fundings}) f
    """), at)  # fmt: skip
    return first


BATCH_TABLE = """
CREATE TEMP TABLE bench_batch (
    g bigint, conversion_id bigint, source_idx int, target_idx int, source_tenant bigint, target_tenant bigint,
    person int, amount bigint, fee bigint, exact numeric, target_amount bigint, rate_card_id bigint, rate numeric,
    source_value numeric, target_value numeric, gross numeric, fee_value numeric, net numeric,
    source_account bigint, target_account bigint, source_clearing bigint, target_clearing bigint,
    source_entry bigint, target_entry bigint, at timestamptz
) ON COMMIT DELETE ROWS
"""


@dataclass
class Layout:
    """Where the load puts conversion g (0-based): its ids and its instant."""

    persons: int
    members: int  # the first member account id
    conversions: int  # the first conversion id
    entries: int  # the first entry id: g's are entries + 2g (out) and + 2g + 1 (in)
    postings: int  # the first posting id: g's are postings + 4g .. + 4g + 3
    step_seconds: float  # between two conversions' commits, over the business day


def batch_sql(alliance: Alliance, layout: Layout) -> str:
    """Conversions lo..hi into bench_batch: source brand, target brand (another), person and amount drawn from
    hashes of g (the same data on every run), priced as exchange__price_amounts prices them."""
    low, high = AMOUNTS
    return f"""
    INSERT INTO bench_batch
    SELECT h.g, {layout.conversions} + h.g, h.si, h.ti, s.tenant_id, t.tenant_id, h.p, h.amount, h.fee,
           (h.amount - h.fee) * r.rate, floor((h.amount - h.fee) * r.rate), r.rate_card_id, r.rate, s.value, t.value,
           h.amount * s.value, h.fee * s.value, h.amount * s.value - h.fee * s.value,
           h.source_account, h.target_account, sc.account_id, tc.account_id,
           {layout.entries} + 2 * h.g, {layout.entries} + 2 * h.g + 1,
           $3::timestamptz + make_interval(secs => (h.g + 0.5) * {layout.step_seconds})
      FROM (SELECT d.*, (d.amount * {FEE_BPS} + 9999) / 10000 AS fee,
                   {layout.members} + d.si * {layout.persons} + d.p AS source_account,
                   {layout.members} + d.ti * {layout.persons} + d.p AS target_account
              FROM (SELECT g, si, (si + 1 + ti_offset) % {BRANDS} AS ti, p, amount FROM (
                      SELECT g, abs(hashint8extended(g, 1) % {BRANDS}) AS si,
                             abs(hashint8extended(g, 2) % {BRANDS - 1}) AS ti_offset,
                             abs(hashint8extended(g, 3) % {layout.persons})::int AS p,
                             {low} + abs(hashint8extended(g, 4) % {high - low + 1}) AS amount
                        FROM generate_series($1::bigint, $2::bigint) g) raw) d) h
      JOIN bench_brands s ON s.idx = h.si
      JOIN bench_brands t ON t.idx = h.ti
      JOIN bench_rates r ON r.source_idx = h.si AND r.target_idx = h.ti
      JOIN bench_system sc ON sc.idx = h.si AND sc.kind = 'clearing' AND sc.shard = h.source_account % {alliance.system_shards}
      JOIN bench_system tc ON tc.idx = h.ti AND tc.kind = 'clearing' AND tc.shard = h.target_account % {alliance.system_shards}
    """  # fmt: skip


# What exchange_convert (commit at once: no quote, no hold, no daily limits) writes for each conversion.
BATCH_CONVERSIONS = """
INSERT INTO exchange_conversions (
    tenant_id, id, target_tenant_id, status, source_member, source_account_id, source_identity, target_member,
    target_account_id, target_identity, quote_id, rate_card_id, source_amount, fee_amount, target_amount, rate,
    remainder, source_point_value, target_point_value, currency, gross_value, fee_value, net_value, business_date,
    member_usage_counted, pair_usage_counted, hold_id, expires_at, window_id, source_entry_id, target_entry_id,
    commit_kid, commit_signature_digest, abort_reason, idempotency_key, created_at, committed_at, resolved_at)
SELECT b.source_tenant, b.conversion_id, b.target_tenant, 'committed', x.external_id, b.source_account, x.public_id,
       x.external_id, b.target_account, x.public_id, NULL, b.rate_card_id, b.amount, b.fee, b.target_amount, b.rate,
       b.exact - b.target_amount, b.source_value, b.target_value, $3, b.gross, b.fee_value, b.net, $2,
       false, false, NULL, b.at + interval '60 seconds', $1, b.source_entry, b.target_entry,
       s.kid, sha256(convert_to('bench-signature-' || b.g, 'UTF8')), NULL, 'bench-conversion-' || b.g,
       b.at, b.at, b.at
  FROM bench_batch b JOIN bench_persons x ON x.p = b.person JOIN bench_brands s ON s.idx = b.source_idx
"""

BATCH_ENTRIES = """
INSERT INTO ledger_entries (tenant_id, id, kind, idempotency_key, metadata, created_at) OVERRIDING SYSTEM VALUE
SELECT source_tenant, source_entry, 'conversion_out', 'bench-conversion-' || g,
       jsonb_build_object('conversion_id', conversion_id), at FROM bench_batch
UNION ALL
SELECT target_tenant, target_entry, 'conversion_in', 'bench-conversion-' || g,
       jsonb_build_object('conversion_id', conversion_id), at FROM bench_batch
"""


def batch_legs(layout: Layout) -> str:
    """The four postings of each conversion, in the order the ledger writes them: the member's debit (with the
    lot slice it consumed: the never-expiring one) and the source clearing's credit; the target clearing's debit
    and the receiving member's credit."""
    p = layout.postings
    return f"""
        SELECT {p} + 4 * g, source_tenant, source_entry, source_account, -amount, at,
               jsonb_build_array(jsonb_build_array(NULL, amount)) FROM bench_batch
        UNION ALL SELECT {p} + 4 * g + 1, source_tenant, source_entry, source_clearing, amount, at, NULL FROM bench_batch
        UNION ALL SELECT {p} + 4 * g + 2, target_tenant, target_entry, target_clearing, -target_amount, at, NULL
                    FROM bench_batch
        UNION ALL SELECT {p} + 4 * g + 3, target_tenant, target_entry, target_account, target_amount, at, NULL
                    FROM bench_batch
    """  # fmt: skip


# The exchange's running positions, as exchange__move_positions moves them: the source's debits and fees, the
# target's credit shard (conversion id % exchange__credit_shards()).
BATCH_POSITIONS = """
UPDATE exchange_positions p SET debits = p.debits + b.gross, fees = p.fees + b.fees, updated_at = b.last
  FROM (SELECT source_tenant, sum(gross) AS gross, sum(fee_value) AS fees, max(at) AS last
          FROM bench_batch GROUP BY 1) b
 WHERE p.tenant_id = b.source_tenant;
UPDATE exchange_position_credits k SET credits = k.credits + b.net
  FROM (SELECT target_tenant, conversion_id % exchange__credit_shards() AS shard, sum(net) AS net
          FROM bench_batch GROUP BY 1, 2) b
 WHERE k.tenant_id = b.target_tenant AND k.shard = b.shard;
"""

# Every membership's open lot, as the ledger leaves it: one never-expiring lot holding its balance (credits
# without a deadline merge into it, debits consume it).
MEMBER_LOTS = """
INSERT INTO ledger_lots (tenant_id, account_id, expires_at, remaining, credited, created_at)
SELECT p.tenant_id, p.account_id, NULL, sum(p.amount), sum(p.amount) FILTER (WHERE p.amount > 0), min(p.posted_at)
  FROM ledger_postings p JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
 WHERE a.kind = 'member'
 GROUP BY p.tenant_id, p.account_id
"""

# What the deferred trigger would have checked at each commit, for all entries at once: two postings or more,
# summing to zero per currency.
CHECK_ENTRIES = """
SELECT (SELECT count(*) FROM ledger_entries) AS entries, count(*) AS entries_with_postings,
       count(*) FILTER (WHERE postings < 2 OR total <> 0) AS unbalanced
  FROM (SELECT count(*) AS postings, sum(amount) AS total FROM ledger_postings
         GROUP BY tenant_id, entry_id, currency_id) e
"""

CHECK_ACCOUNTS = """
SELECT count(*) FROM ledger_accounts a
  LEFT JOIN (SELECT tenant_id, account_id, sum(amount) AS total, count(*) AS postings, max(version_after) AS version
               FROM ledger_postings GROUP BY 1, 2) p ON p.tenant_id = a.tenant_id AND p.account_id = a.id
 WHERE a.balance <> coalesce(p.total, 0) OR a.version <> coalesce(p.postings, 0) OR a.version <> coalesce(p.version, 0)
"""

DATA_SIZES = """
SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
 WHERE c.relname IN ('exchange_conversions', 'ledger_entries', 'ledger_postings', 'ledger_accounts', 'ledger_lots')
   AND c.relkind = 'r' AND c.relpersistence = 'p'
"""


async def load(conn: asyncpg.Connection, n: int, persons: int) -> tuple[Alliance, dict[str, float], dict, dict]:
    """The brands, members and n conversions committed in the open window. Returns the alliance, the phases'
    durations, the checks' results and the tables' sizes (MB)."""
    phases = Phases()
    await conn.execute(f"SET work_mem = '{LOAD_WORK_MEM}'")
    business_date = datetime.now(TIME_ZONE).date() - timedelta(days=1)  # yesterday's: the nightly job's case
    with phases.phase(f"{BRANDS} brands, {BRANDS * (BRANDS - 1):,} pairs with rate cards, the open window"):
        alliance = await set_up_brands(conn, business_date)
    with phases.phase(f"{persons:,} persons x {BRANDS} memberships, linked and funded"):
        members = await set_up_members(conn, alliance, persons)
    layout = Layout(
        persons=persons, members=members,
        conversions=await reserve_ids(conn, "exchange_conversions", n),
        entries=await reserve_ids(conn, "ledger_entries", 2 * n),
        postings=await reserve_ids(conn, "ledger_postings", 4 * n),
        step_seconds=86_400 / n,
    )  # fmt: skip
    await conn.execute(BATCH_TABLE)
    fill, legs = batch_sql(alliance, layout), POST_LEGS.format(legs=batch_legs(layout))
    console.print("  the ledger's deferred balance trigger (postings_balanced) is disabled for the load")
    await conn.execute("ALTER TABLE ledger_postings DISABLE TRIGGER postings_balanced")
    try:
        started = time.perf_counter()
        with count_progress("  {task.description}") as progress:
            task = progress.add_task(f"{n:,} conversions (4 postings each)", total=n)
            for lo in range(0, n, BATCH):
                hi = min(lo + BATCH, n) - 1
                async with conn.transaction():
                    await conn.execute(fill, lo, hi, alliance.opened_at)
                    await conn.execute(BATCH_CONVERSIONS, alliance.window_id, business_date, SETTLEMENT_CURRENCY)
                    await conn.execute(BATCH_ENTRIES)
                    await conn.execute(legs)
                    await conn.execute(BATCH_POSITIONS)
                progress.update(task, completed=hi + 1)
        phases.seconds["conversions"] = round(time.perf_counter() - started, 2)
        console.print(f"  {n:,} conversions: {phases.seconds['conversions']:.1f} s")
        with phases.phase("members' lots"):
            await conn.execute(MEMBER_LOTS)
    finally:
        await conn.execute("ALTER TABLE ledger_postings ENABLE TRIGGER postings_balanced")
    console.print("  postings_balanced enabled again")
    with phases.phase("checks: every entry balanced, every account's balance and version = its postings'"):
        entries = await conn.fetchrow(CHECK_ENTRIES)
        bad_accounts = await conn.fetchval(CHECK_ACCOUNTS)
    checks = {
        "entries": entries["entries"], "entries_with_postings": entries["entries_with_postings"],
        "unbalanced_entries": entries["unbalanced"], "accounts_not_matching_postings": bad_accounts,
        "ok": entries["entries"] == entries["entries_with_postings"] and entries["unbalanced"] == 0
              and bad_accounts == 0,
    }  # fmt: skip
    console.print(
        f"  {checks['entries']:,} entries, {checks['unbalanced_entries']} unbalanced; "
        f"{bad_accounts} accounts whose balance or version differs from their postings'",
        style=None if checks["ok"] else "bold red",
    )  # fmt: skip
    await conn.execute("RESET work_mem")
    with phases.phase("VACUUM ANALYZE, CHECKPOINT"):
        await conn.execute("VACUUM ANALYZE")
        await checkpoint(conn)
    sizes = {name: round(size / MB, 1) for name, size in await conn.fetch(DATA_SIZES)}
    return alliance, phases.seconds, checks, sizes


# --- measuring --------------------------------------------------------------------------------------------


def private_bytes(memory) -> int:
    """Resident memory that is the process's own: RSS less the pages it shares (file-backed and shared memory,
    the shared buffers among them)."""
    return memory.rss - memory.shared


class MemorySampler:
    """Samples the backend, its parallel workers and this process (measured_call: every SAMPLE_SECONDS), keeping
    the peaks."""

    def __init__(self, backend_pid: int, meter: CpuMeter) -> None:
        self.backend_pid = backend_pid
        self.postmaster = meter.postmaster
        self.backend = psutil.Process(backend_pid) if self.postmaster is not None else None
        self.me = psutil.Process()
        self.workers: dict[int, psutil.Process] = {}
        self.seen_workers: set[int] = set()
        self.not_workers: set[int] = set()
        self.peak_rss = self.peak_private = self.peak_workers = self.peak_pg = self.peak_python = 0
        self.samples = 0

    def _scan_workers(self) -> None:
        marker = f"parallel worker for PID {self.backend_pid}"
        for child in self.postmaster.children():
            if child.pid in self.workers or child.pid in self.not_workers:
                continue
            try:
                is_worker = marker in " ".join(child.cmdline())
            except psutil.Error:
                continue
            if is_worker:
                self.workers[child.pid] = child
                self.seen_workers.add(child.pid)
            else:
                self.not_workers.add(child.pid)

    def sample(self) -> None:
        self.peak_python = max(self.peak_python, self.me.memory_info().rss)
        if self.backend is not None:
            if self.samples % WORKER_SCAN_EVERY == 0:
                self._scan_workers()
            memory = self.backend.memory_info()
            workers = 0
            for pid, worker in list(self.workers.items()):
                try:
                    workers += private_bytes(worker.memory_info())
                except psutil.Error:
                    del self.workers[pid]  # finished
            self.peak_rss = max(self.peak_rss, memory.rss)
            self.peak_private = max(self.peak_private, private_bytes(memory))
            self.peak_workers = max(self.peak_workers, workers)
            self.peak_pg = max(self.peak_pg, private_bytes(memory) + workers)
        self.samples += 1


async def temp_usage(conn: asyncpg.Connection) -> tuple[int, int]:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    row = await conn.fetchrow("SELECT temp_files, temp_bytes FROM pg_stat_database WHERE datname = current_database()")
    return row["temp_files"], row["temp_bytes"]


def cpu_seconds(process: psutil.Process | None) -> float | None:
    if process is None:
        return None
    times = process.cpu_times()
    return times.user + times.system


async def measured_call(
    dsn: str, admin: asyncpg.Connection, meter: CpuMeter, step: str, sql: str, *args: object
) -> tuple[str | None, asyncpg.PostgresError | None, Measured]:
    """Runs `sql` on a fresh connection, measuring it. Returns its text result, or the error it raised."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.fetchval("SELECT 1")
        sampler = MemorySampler(conn.get_server_pid(), meter)
        idle = private_bytes(sampler.backend.memory_info()) if sampler.backend else None
        files_before, bytes_before = await temp_usage(admin)
        await meter.settle()
        before = meter.snapshot()
        backend_before = cpu_seconds(sampler.backend)
        result, error = None, None
        async with sampling(SAMPLE_SECONDS, sampler.sample):
            started = time.perf_counter()
            try:
                result = await conn.fetchval(sql, *args)
            except asyncpg.PostgresError as failed:
                error = failed
            seconds = time.perf_counter() - started
        sampler.sample()
        backend_after = cpu_seconds(sampler.backend)
        # The backend reports its temp file statistics when idle; forcing it makes the next read see them.
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    await meter.settle()
    after = meter.snapshot()
    files_after, bytes_after = await temp_usage(admin)
    local = sampler.backend is not None
    measured = Measured(
        step=step,
        seconds=round(seconds, 3),
        backend_cpu_seconds=round(backend_after - backend_before, 3) if local else None,
        server_cpu_seconds=None if before.server is None else round(after.server - before.server, 3),
        backend_idle_private_mb=round(idle / MB, 1) if local else None,
        backend_peak_rss_mb=round(sampler.peak_rss / MB, 1) if local else None,
        backend_peak_private_mb=round(sampler.peak_private / MB, 1) if local else None,
        workers_peak_private_mb=round(sampler.peak_workers / MB, 1) if local else None,
        pg_peak_private_mb=round(sampler.peak_pg / MB, 1) if local else None,
        parallel_workers=len(sampler.seen_workers),
        python_peak_rss_mb=round(sampler.peak_python / MB, 1),
        temp_files=files_after - files_before,
        temp_mb=round((bytes_after - bytes_before) / MB, 1),
        samples=sampler.samples,
    )
    return result, error, measured


AUTO_EXPLAIN = (
    "auto_explain.log_min_duration = 0", "auto_explain.log_analyze = on", "auto_explain.log_buffers = on",
    "auto_explain.log_nested_statements = on", "auto_explain.log_level = notice",
)  # fmt: skip


async def explain_compute(dsn: str, window_id: int) -> tuple[float, list[dict]]:
    """The compute once, with auto_explain logging each statement inside it, in a transaction rolled back.
    Returns how long it took (EXPLAIN ANALYZE's timing included) and each statement's duration, text and plan,
    slowest first."""
    conn = await asyncpg.connect(dsn)
    notices: list[str] = []
    conn.add_log_listener(lambda _conn, message: notices.append(message.message))
    try:
        await conn.execute("LOAD 'auto_explain'")
        for setting in AUTO_EXPLAIN:
            await conn.execute(f"SET {setting}")
        transaction = conn.transaction()
        await transaction.start()
        started = time.perf_counter()
        try:
            await conn.fetchval("SELECT settlement_compute($1)::text", window_id)
        except asyncpg.PostgresError:
            pass  # failed checks: the measured call reports them; the plans are what is wanted here
        finally:
            seconds = time.perf_counter() - started
            await transaction.rollback()
    finally:
        await conn.close()
    statements = []
    for notice in notices:
        found = re.match(r"duration: ([\d.]+) ms\s+plan:\s*(?:Query Text: )?(.*)", notice, re.S)
        if found:
            text = found.group(2)
            statements.append({"ms": float(found.group(1)), "query": text.split("\n", 1)[0][:160], "plan": text})
    return round(seconds, 3), sorted(statements, key=lambda s: -s["ms"])


def print_explain(run: SizeRun) -> None:
    console.print(f"\nauto_explain of the compute at {run.conversions:,} conversions (a run of "
                  f"{run.explain_seconds:.1f} s, rolled back); the {EXPLAIN_LISTED} slowest statements inside it "
                  f"(the call itself first):")  # fmt: skip
    for statement in run.explain[:EXPLAIN_LISTED]:
        console.print(f"  {statement['ms']:>10,.1f} ms  {statement['query']}", markup=False, highlight=False)
    nested = [s for s in run.explain if "settlement_compute" not in s["query"]]
    if nested:
        console.print("\nthe slowest statement inside settlement_compute:\n")
        console.print(nested[0]["plan"], markup=False, highlight=False, soft_wrap=True)


# --- running it all ---------------------------------------------------------------------------------------


async def run_size(server_url: str, n: int, args: argparse.Namespace) -> tuple[SizeRun, dict[str, str]]:
    url = with_database(server_url, BENCH_DATABASE)
    dsn = asyncpg_dsn(url)
    admin = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        alliance, phases, checks, sizes = await load(admin, n, args.persons)
        load_seconds = round(time.perf_counter() - started, 2)
        console.print(f"  data generated in {load_seconds:.1f} s")
        facts, meter = await facts_and_meter(admin)
        for name in ("work_mem", "hash_mem_multiplier", "max_parallel_workers_per_gather", "jit"):
            facts[name] = await admin.fetchval(f"SHOW {name}")
        facts["jit_available"] = str(await admin.fetchval("SELECT pg_jit_available()"))
        today = datetime.now(TIME_ZONE).date()
        with console.status("the cut-off: settlement_close_window"):
            raw, error, close = await measured_call(
                dsn, admin, meter, "close", "SELECT settlement_close_window($1, $2)::text", alliance.business_date, today
            )
        if error is not None or not json.loads(raw)["ok"]:
            raise RuntimeError(f"settlement_close_window failed: {error or raw}")
        explain, explain_seconds = [], None
        if args.explain:
            with console.status("the compute under auto_explain (rolled back)"):
                explain_seconds, explain = await explain_compute(dsn, alliance.window_id)
        with console.status(f"the compute step: settlement_compute({alliance.window_id})"):
            raw, error, compute = await measured_call(
                dsn, admin, meter, "compute", "SELECT settlement_compute($1)::text", alliance.window_id
            )
    finally:
        await admin.close()
    if error is not None:
        ok = False
        report = json.loads(error.detail) if getattr(error, "sqlstate", None) == "AL002" else {"error": str(error)}
    else:
        outcome = json.loads(raw)
        report = outcome["run"]["report"] if outcome["ok"] else outcome
        ok = outcome["ok"] and not outcome.get("already") and not report.get("mismatches")
        ok = ok and report.get("conversions") == n
    run = SizeRun(
        conversions=n, persons=args.persons, load_seconds=load_seconds, load_phases=phases, load_checks=checks,
        data_mb=sizes, close=close, compute=compute, compute_ok=ok, compute_report=report, explain=explain,
        explain_seconds=explain_seconds,
    )  # fmt: skip
    console.print(
        f"  compute: {'ok' if ok else 'FAILED'}: {report.get('conversions', '?')} conversions, "
        f"{report.get('pairs', '?')} pairs, {report.get('brands', '?')} brands, fee income "
        f"{report.get('fee_income', '?')} CNY ({report.get('fee_income_fen', '?')} fen), "
        f"{len(report.get('mismatches', []))} mismatches",
        style="bold" if ok else "bold red",
    )  # fmt: skip
    return run, facts


def results_document(args: argparse.Namespace, server: dict[str, str], runs: list[SizeRun]) -> dict:
    settings = {"sizes": args.sizes, "persons": args.persons, "brands": BRANDS, "fee_bps": FEE_BPS,
                "amounts": AMOUNTS, "batch": BATCH, "sample_seconds": SAMPLE_SECONDS, "explain": args.explain}
    small, large = min(runs, key=lambda r: r.conversions), max(runs, key=lambda r: r.conversions)
    growth = None
    if small is not large and small.compute.pg_peak_private_mb and large.compute.pg_peak_private_mb is not None:
        growth = large.compute.pg_peak_private_mb / small.compute.pg_peak_private_mb
    python_growth = large.compute.python_peak_rss_mb / small.compute.python_peak_rss_mb
    return {
        **document_head("settlement", args, settings, server),
        "python_lifetime_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "runs": [asdict(r) for r in runs],
        "targets": {
            "compute_seconds": {
                "conversions": large.conversions, "value": large.compute.seconds, "target": TARGET_SECONDS,
                "judged": large.conversions == TARGET_CONVERSIONS,
                "met": large.compute.seconds <= TARGET_SECONDS and large.compute_ok,
            },
            "memory_growth": {
                "smaller": small.conversions, "larger": large.conversions,
                "pg_private_mb": [small.compute.pg_peak_private_mb, large.compute.pg_peak_private_mb],
                "pg_private_ratio": growth,
                "python_rss_ratio": python_growth, "target": TARGET_MEMORY_GROWTH,
                "met": None if growth is None else growth <= TARGET_MEMORY_GROWTH,
            },
            "all_ok": all(r.compute_ok and r.load_checks["ok"] for r in runs),
        },
    }  # fmt: skip


# --- reporting --------------------------------------------------------------------------------------------

HEADERS = [
    "conversions", "data generation s", "close s", "compute s", "compute CPU s backend / all PG",
    "backend peak RSS MB", "backend private MB idle / peak", "parallel workers (peak private MB)",
    "temp files (MB)", "Python peak RSS MB", "checks",
]  # fmt: skip


def number(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def size_row(run: dict) -> list[str]:
    c = run["compute"]
    return [
        f"{run['conversions']:,}", f"{run['load_seconds']:.0f}", f"{run['close']['seconds']:.2f}",
        f"{c['seconds']:.2f}", f"{number(c['backend_cpu_seconds'], '.2f')} / {number(c['server_cpu_seconds'], '.2f')}",
        number(c["backend_peak_rss_mb"]),
        f"{number(c['backend_idle_private_mb'])} / {number(c['backend_peak_private_mb'])}",
        f"{c['parallel_workers']} ({number(c['workers_peak_private_mb'])})",
        f"{c['temp_files']} ({c['temp_mb']:.1f})", f"{c['python_peak_rss_mb']:.0f}",
        "ok" if run["compute_ok"] and run["load_checks"]["ok"] else "FAILED",
    ]  # fmt: skip


def verdict_lines(results: dict) -> list[str]:
    time_target, memory = results["targets"]["compute_seconds"], results["targets"]["memory_growth"]
    if time_target["judged"]:
        met = "met" if time_target["met"] else "NOT met"
        lines = [f"compute at {time_target['conversions']:,} conversions: {time_target['value']:.2f} s "
                 f"(target <= {TARGET_SECONDS:.0f} s: {met})"]  # fmt: skip
    else:
        lines = [f"compute at {time_target['conversions']:,} conversions: {time_target['value']:.2f} s (the target, "
                 f"<= {TARGET_SECONDS:.0f} s, is for {TARGET_CONVERSIONS:,}: not judged)"]  # fmt: skip
    if memory["pg_private_ratio"] is None:
        lines.append("memory growth: not judged (one size only, or the server is not on this machine)")
    else:
        met = "met" if memory["met"] else "NOT met"
        lines.append(
            f"PostgreSQL's private peak memory (backend + parallel workers): {memory['pg_private_mb'][1]:.1f} MB at "
            f"{memory['larger']:,} conversions, {memory['pg_private_mb'][0]:.1f} MB at {memory['smaller']:,}: "
            f"{memory['pg_private_ratio']:.2f} x (target <= {TARGET_MEMORY_GROWTH}: {met}); "
            f"this process's peak RSS: {memory['python_rss_ratio']:.2f} x"
        )  # fmt: skip
    if not results["targets"]["all_ok"]:
        lines.append("A load check or a computation FAILED: see the JSON results.")
    return lines


LEGEND = (
    "Each size on a fresh database: 50 brands, every membership of every person funded, N conversions committed in "
    "the open window, loaded in bulk SQL (data generation: the whole load with its checks, VACUUM ANALYZE and "
    "CHECKPOINT). close = settlement_close_window, the cut-off; compute = settlement_compute(window), each on a fresh "
    "connection. CPU: the backend's own, and all PostgreSQL processes' (parallel workers included). Memory sampled "
    "every 20 ms: the backend's RSS counts the shared buffers it touched (the server's cache, bounded by "
    "shared_buffers); private = RSS less shared pages, what the computation itself holds (sorts, hashes, caches). "
    "temp files: spilled to disk during the compute (pg_stat_database). checks: entries balanced, accounts equal "
    "their postings, the compute's report ok with no mismatches."
)


def report(results: dict) -> Report:
    rows = [size_row(run) for run in results["runs"]]
    return Report("Settlement of one window: the cut-off and the compute step", HEADERS, rows, LEGEND,
                  verdict_lines(results))  # fmt: skip


# --- command line -----------------------------------------------------------------------------------------


def counts(text: str) -> list[int]:
    return sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.settlement", description=__doc__.split("\n\n")[0])
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--conversions", type=int, default=TARGET_CONVERSIONS,
                       help="conversions in the window; the compute is also run at a tenth of it, to compare "
                            "memory (default 1000000)")  # fmt: skip
    sizes.add_argument("--sizes", type=counts, help="the window sizes to run instead, e.g. 100000,1000000")
    parser.add_argument("--persons", type=int, default=2000,
                        help=f"persons, each a member of all {BRANDS} brands (default 2000)")  # fmt: skip
    parser.add_argument("--explain", action="store_true",
                        help="also log every statement inside the compute with auto_explain (a run rolled back, "
                             "before the measured one) and print the slowest's plan")  # fmt: skip
    args = parse_with(parser, argv)
    if args.sizes is None:
        args.sizes = counts(f"{args.conversions // 10},{args.conversions}")
    if not args.sizes or min(args.sizes) < 1 or args.persons < 1:
        parser.error("sizes and persons must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runs: list[SizeRun] = []
    with backing_server("postgres") as server_url:
        for n in args.sizes:
            console.rule(f"{n:,} conversions")
            fresh_database(server_url)
            run, facts = asyncio.run(run_size(server_url, n, args))
            runs.append(run)
    results = results_document(args, facts, runs)
    publish(results, report(results))
    for run in runs:
        if run.explain:
            print_explain(run)
    if not results["targets"]["all_ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
