"""Ledger transfers vs pgbench, on one PostgreSQL, in one run.

    uv run python -m bench.ledger [--seconds 10] [--concurrency 1,8,32,64] [--accounts 10000]

1. The database: ALLIANCE_DATABASE_URL if set, else an embedded PostgreSQL under .alliance/bench. A fresh
   database `alliance_bench` is created there and migrated.
2. The ledger: N funded member accounts, then, for each concurrency, that many asyncio workers call
   `ledger.transfer()` in-process (asyncpg, autocommit: each call is one atomic statement) for a fixed time.
3. pgbench: the same two-account transfer written as a plain SQL transaction against look-alike tables
   (pgb_*) in the same database, same server, same concurrencies (TRANSFER_TRANSACTION_SCRIPT says what it
   does and does not do compared with ledger_post_entry); and, as a control, pgbench sending the very
   ledger_post_entry() call that ledger.transfer() sends (LEDGER_FUNCTION_SCRIPT): it tells the cost of the
   Python client path from the cost of the SQL function.
4. A table per concurrency, the best-vs-best ratio (target: ledger >= 0.7 x pgbench), JSON results in
   bench/out/ and a Markdown snippet for bench/RESULTS.md.

Both clients run on the same machine as PostgreSQL and share its cores with it; the CPU columns say how
much each client took.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from alliance.db.engine import asyncpg_dsn
from alliance.embedded import pg_bin
from alliance.ledger import AccountKind, LedgerRejected
from alliance.ledger import service as ledger
from bench.common import (
    BENCH_DATABASE,
    CpuMeter,
    Load,
    backing_server,
    checkpoint,
    console,
    cpu_ms_per_txn,
    cpu_probe_ms,
    document_head,
    facts_and_meter,
    fresh_database,
    load_between,
    parse_with,
    print_table,
    publish,
    run_progress,
    with_database,
    with_progress,
)

TENANT_ID = 1
INITIAL_BALANCE = 10**12  # no transfer ever runs out of points: every call is a successful entry
SETUP_CONNECTIONS = 8  # setup's parallel transactions; the currency gets one issuance shard per connection
TARGET_RATIO = 0.7
NOISY_OTHER_CORES = 0.2  # other programs using more than this during a run make it noisy
NOISY_SPEED_DRIFT = 1.25  # so does the cores' speed varying more than this between runs


# --- results ----------------------------------------------------------------------------------------------


@dataclass
class LedgerRun:
    concurrency: int
    seconds: float
    transfers: int
    rejected: int
    tps: float
    p50_ms: float
    p99_ms: float
    load: Load


@dataclass
class PgbenchRun:
    workload: str
    concurrency: int
    seconds: float
    transactions: int
    failed: int
    tps: float
    latency_avg_ms: float
    load: Load


# --- the ledger side --------------------------------------------------------------------------------------


async def open_members(pool: asyncpg.Pool, currency_id: int, count: int) -> list[int]:
    async with pool.acquire() as conn, conn.transaction():
        return [await ledger.open_member_account(conn, TENANT_ID, currency_id) for _ in range(count)]


async def fund_members(pool: asyncpg.Pool, currency_id: int, accounts: list[int]) -> None:
    """Credits each account from its issuance shard, in one transaction. Callers pass accounts of one shard
    each, so parallel funding transactions never wait for each other's shard lock."""
    async with pool.acquire() as conn, conn.transaction():
        for account in accounts:
            issuance = await ledger.system_account(conn, TENANT_ID, currency_id, AccountKind.ISSUANCE, spread=account)
            await ledger.transfer(conn, TENANT_ID, issuance, account, INITIAL_BALANCE, kind="credit")


async def set_up_ledger(dsn: str, n_accounts: int) -> list[int]:
    """One tenant, one currency, n funded member accounts; returns their ids."""
    async with asyncpg.create_pool(dsn, min_size=SETUP_CONNECTIONS, max_size=SETUP_CONNECTIONS) as pool:
        async with pool.acquire() as conn:
            currency = await ledger.open_currency(conn, TENANT_ID, "BENCH", system_shards=SETUP_CONNECTIONS)
        batches = [len(range(i, n_accounts, SETUP_CONNECTIONS)) for i in range(SETUP_CONNECTIONS)]
        opened = await asyncio.gather(*(open_members(pool, currency.id, size) for size in batches))
        accounts = sorted(itertools.chain.from_iterable(opened))
        # system_account() maps an account to issuance shard `account % shards`: group by that.
        by_shard = [[a for a in accounts if a % SETUP_CONNECTIONS == shard] for shard in range(SETUP_CONNECTIONS)]
        await asyncio.gather(*(fund_members(pool, currency.id, group) for group in by_shard))
    return accounts


def two_distinct(accounts: list[int]) -> tuple[int, int]:
    first = random.randrange(len(accounts))
    second = random.randrange(len(accounts) - 1)
    second += second >= first  # skip `first`: uniform over the others
    return accounts[first], accounts[second]


async def transfer_loop(
    pool: asyncpg.Pool, accounts: list[int], deadline: float, key_prefix: str
) -> tuple[list[float], int]:
    """One worker: transfers until the deadline; returns the latencies of its successes (s) and its
    rejections."""
    latencies: list[float] = []
    rejected = 0
    # The worker keeps its connection for the whole run, as a pgbench client does.
    async with pool.acquire() as conn:
        for seq in itertools.count():
            if time.perf_counter() >= deadline:
                break
            source, target = two_distinct(accounts)
            started = time.perf_counter()
            try:
                await ledger.transfer(
                    conn, TENANT_ID, source, target, random.randint(1, 100),
                    kind="transfer", idempotency_key=f"{key_prefix}-{seq}",
                )  # fmt: skip
            except LedgerRejected:
                rejected += 1
                continue
            latencies.append(time.perf_counter() - started)
    return latencies, rejected


async def run_ledger(dsn: str, accounts: list[int], concurrency: int, seconds: float, meter: CpuMeter) -> LedgerRun:
    run_id = uuid.uuid4().hex[:12]  # idempotency keys never repeat, even across runs on one database
    await meter.settle()
    probe_ms = cpu_probe_ms()
    async with asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency) as pool:
        before = meter.snapshot()
        deadline = before.wall + seconds
        results = await asyncio.gather(
            *(transfer_loop(pool, accounts, deadline, f"{run_id}-w{w}") for w in range(concurrency))
        )
        after = meter.snapshot()
    latencies = sorted(itertools.chain.from_iterable(lat for lat, _ in results))
    elapsed = after.wall - before.wall
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [0.0] * 99
    return LedgerRun(
        concurrency=concurrency,
        seconds=round(elapsed, 3),
        transfers=len(latencies),
        rejected=sum(r for _, r in results),
        tps=len(latencies) / elapsed,
        p50_ms=cuts[49] * 1000,
        p99_ms=cuts[98] * 1000,
        load=load_between(before, after, client_is_child=False, probe_ms=probe_ms),
    )


# --- the pgbench side -------------------------------------------------------------------------------------

# Look-alikes of ledger_accounts / _entries / _postings / _idempotency with the same indexes, foreign keys
# and checks that a transfer touches; minus tenant_id, currencies, lots and the triggers.
PGBENCH_TABLES = """
CREATE TABLE pgb_accounts (
    id      bigint PRIMARY KEY,
    balance bigint NOT NULL CHECK (balance >= 0),
    version bigint NOT NULL DEFAULT 0
);
CREATE TABLE pgb_entries (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind              text   NOT NULL,
    reverses_entry_id bigint UNIQUE,  -- as ledger_entries: a second index every insert maintains
    idempotency_key   text,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE pgb_postings (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id      bigint NOT NULL REFERENCES pgb_entries,
    account_id    bigint NOT NULL REFERENCES pgb_accounts,
    amount        bigint NOT NULL CHECK (amount <> 0),
    balance_after bigint NOT NULL,
    version_after bigint NOT NULL,
    posted_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (account_id, version_after)
);
CREATE INDEX ON pgb_postings (entry_id);
CREATE INDEX ON pgb_postings (account_id, posted_at) INCLUDE (balance_after, version_after);
CREATE TABLE pgb_idempotency (
    key        text  PRIMARY KEY,
    outcome    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""

# Two distinct random accounts in [lo, hi], an amount and a key, as the Python workers pick them.
PICK_TRANSFER = r"""
\set a random(:lo, :hi)
\set b random(:lo, :hi - 1)
\if :b >= :a
\set b :b + 1
\endif
\set amount random(1, 100)
\set key random(1, 4611686018427387903)
"""

# The hand-written baseline: one transfer as a client-driven transaction (7 round trips). Like the ledger it
# locks both accounts in id order, updates balances and versions, writes an entry, two postings carrying
# balance_after/version_after and an idempotency row holding a JSON outcome. Unlike the ledger it takes no
# advisory lock and does no look-up on the idempotency key, consumes and creates no lots, runs no deferred
# "entry is balanced" trigger, checks no currency/tenant, and builds a smaller outcome document.
TRANSFER_TRANSACTION_SCRIPT = PICK_TRANSFER + r"""
BEGIN;
SELECT id FROM pgb_accounts WHERE id IN (:a, :b) ORDER BY id FOR UPDATE;
UPDATE pgb_accounts SET balance = balance - :amount, version = version + 1 WHERE id = :a
    RETURNING balance AS bal_a, version AS ver_a \gset
UPDATE pgb_accounts SET balance = balance + :amount, version = version + 1 WHERE id = :b
    RETURNING balance AS bal_b, version AS ver_b \gset
INSERT INTO pgb_entries (kind, idempotency_key) VALUES ('transfer', 'pgb-' || :key) RETURNING id AS entry_id \gset
INSERT INTO pgb_postings (entry_id, account_id, amount, balance_after, version_after)
    VALUES (:entry_id, :a, -:amount::bigint, :bal_a, :ver_a), (:entry_id, :b, :amount, :bal_b, :ver_b);
INSERT INTO pgb_idempotency (key, outcome) VALUES ('pgb-' || :key, jsonb_build_object(
    'ok', true, 'entry', jsonb_build_object('id', :entry_id::bigint, 'kind', 'transfer', 'postings', jsonb_build_array(
        jsonb_build_object('account_id', :a::bigint, 'amount', -:amount::bigint, 'balance_after', :bal_a::bigint),
        jsonb_build_object('account_id', :b::bigint, 'amount', :amount::bigint, 'balance_after', :bal_b::bigint)))));
END;
"""

# The control: the very statement ledger.transfer() sends, on the ledger's own tables, driven by pgbench
# instead of Python. Its gap to the Python ledger is the cost of the Python client path; its gap to the
# baseline is the cost of ledger_post_entry itself. (The request hash is a constant: Python computes it
# client-side, the server only stores it.)
LEDGER_FUNCTION_SCRIPT = PICK_TRANSFER + r"""
SELECT ledger_post_entry(:tenant, 'fn-' || :key, '\x00'::bytea, 'transfer', ARRAY[:a, :b]::bigint[],
    ARRAY[-:amount::bigint, :amount::bigint], ARRAY[NULL, NULL]::jsonb[], NULL)::text;
"""


@dataclass
class PgbenchWorkload:
    name: str
    script: str
    lo: int  # the accounts it transfers between: ids lo..hi
    hi: int

    def write_to(self, directory: Path) -> Path:
        path = directory / f"{self.name}.sql"
        path.write_text(self.script)
        return path


async def set_up_pgbench_tables(conn: asyncpg.Connection, n_accounts: int) -> None:
    await conn.execute(PGBENCH_TABLES)
    await conn.execute(
        "INSERT INTO pgb_accounts (id, balance) SELECT g, $2 FROM generate_series(1, $1) g", n_accounts, INITIAL_BALANCE
    )


async def measuring_connection(url: str, pgbench_accounts: int) -> tuple[asyncpg.Connection, dict[str, str], CpuMeter]:
    """The admin connection the runs are measured from, once pgbench's tables are in and all is analysed; the
    server's facts; the CPU meter."""
    admin = await asyncpg.connect(asyncpg_dsn(url))
    await set_up_pgbench_tables(admin, pgbench_accounts)
    await admin.execute("VACUUM ANALYZE")
    facts, meter = await facts_and_meter(admin)
    return admin, facts, meter


def libpq_env(url: str) -> dict[str, str]:
    """PGHOST/PGPORT/... for pgbench: the same server the ledger part talks to."""
    parsed = make_url(url)
    env = {"PGHOST": parsed.host or "127.0.0.1", "PGPORT": str(parsed.port or 5432), "PGDATABASE": BENCH_DATABASE}
    if parsed.username:
        env["PGUSER"] = parsed.username
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    return env


def parse_pgbench(output: str) -> tuple[float, float, int, int]:
    """(tps, average latency ms, transactions, failed) from pgbench's report."""

    def number(pattern: str, default: str | None = None) -> str:
        found = re.search(pattern, output)
        if found is None:
            if default is None:
                raise RuntimeError(f"pgbench output has no {pattern!r}:\n{output}")
            return default
        return found.group(1)

    return (
        float(number(r"tps = ([\d.]+) \(without initial connection time\)")),
        float(number(r"latency average = ([\d.]+) ms")),
        int(number(r"number of transactions actually processed: (\d+)")),
        int(number(r"number of failed transactions: (\d+)", "0")),
    )


async def run_pgbench(
    url: str, workload: PgbenchWorkload, script: Path, concurrency: int, seconds: int, meter: CpuMeter
) -> PgbenchRun:
    argv = [
        str(pg_bin("pgbench")), "--no-vacuum", "-M", "prepared", "-f", str(script),
        "-D", f"lo={workload.lo}", "-D", f"hi={workload.hi}", "-D", f"tenant={TENANT_ID}",
        "-c", str(concurrency), "-j", str(min(concurrency, 2)), "-T", str(seconds),
    ]  # fmt: skip
    await meter.settle()
    probe_ms = cpu_probe_ms()
    before = meter.snapshot()
    process = await asyncio.create_subprocess_exec(
        *argv, env={**os.environ, **libpq_env(url)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    await meter.settle()
    after = meter.snapshot()
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"pgbench exited with {process.returncode}:\n{text}")
    tps, latency_ms, transactions, failed = parse_pgbench(text)
    return PgbenchRun(
        workload=workload.name,
        concurrency=concurrency,
        seconds=round(after.wall - before.wall, 3),
        transactions=transactions,
        failed=failed,
        tps=tps,
        latency_avg_ms=latency_ms,
        load=load_between(before, after, client_is_child=True, probe_ms=probe_ms),
    )


# --- running it all ---------------------------------------------------------------------------------------


async def benchmark(server_url: str, args: argparse.Namespace) -> dict:
    url = with_database(server_url, BENCH_DATABASE)
    dsn = asyncpg_dsn(url)
    with console.status(f"setting up {args.accounts:,} funded ledger accounts and the pgbench tables"):
        accounts = await set_up_ledger(dsn, args.accounts)
        admin, facts, meter = await measuring_connection(url, args.accounts)
    # Opened in one go on a fresh database, the member accounts have consecutive ids: pgbench picks from a range.
    if accounts != list(range(accounts[0], accounts[-1] + 1)):
        raise RuntimeError("the member accounts' ids are not consecutive")
    baseline = PgbenchWorkload("transfer-transaction", TRANSFER_TRANSACTION_SCRIPT, 1, args.accounts)
    control = PgbenchWorkload("ledger-function", LEDGER_FUNCTION_SCRIPT, accounts[0], accounts[-1])

    runs: dict[str, list] = {"ledger": [], baseline.name: [], control.name: []}
    with tempfile.TemporaryDirectory() as scratch, run_progress() as progress:
        scripts = {w.name: w.write_to(Path(scratch)) for w in (baseline, control)}
        # Interleaved per concurrency, so every workload sees a database of about the same size.
        for concurrency in args.concurrency:
            await checkpoint(admin)
            runs["ledger"].append(await with_progress(
                progress, f"{'ledger (Python)':<22} x{concurrency}", args.seconds,
                run_ledger(dsn, accounts, concurrency, args.seconds, meter),
            ))  # fmt: skip
            for workload, label in ((control, "ledger fn via pgbench"), (baseline, "pgbench transaction")):
                await checkpoint(admin)
                runs[workload.name].append(await with_progress(
                    progress, f"{label:<22} x{concurrency}", args.seconds,
                    run_pgbench(url, workload, scripts[workload.name], concurrency, args.seconds, meter),
                ))  # fmt: skip
    await admin.close()
    return results_document(args, facts, runs["ledger"], runs[baseline.name], runs[control.name])


def results_document(
    args: argparse.Namespace, server: dict[str, str],
    ledger_runs: list[LedgerRun], pgbench_runs: list[PgbenchRun], function_runs: list[PgbenchRun],
) -> dict:  # fmt: skip
    best_ledger = max(ledger_runs, key=lambda r: r.tps)
    best_pgbench = max(pgbench_runs, key=lambda r: r.tps)
    best_function = max(function_runs, key=lambda r: r.tps)
    ratio = best_ledger.tps / best_pgbench.tps
    settings = {"accounts": args.accounts, "seconds": args.seconds, "concurrency": args.concurrency}
    return {
        **document_head("ledger", args, settings, server),
        "ledger": [asdict(r) for r in ledger_runs],
        "pgbench": [asdict(r) for r in pgbench_runs],
        "ledger_function_via_pgbench": [asdict(r) for r in function_runs],
        "best": {
            "ledger_tps": best_ledger.tps, "ledger_concurrency": best_ledger.concurrency,
            "pgbench_tps": best_pgbench.tps, "pgbench_concurrency": best_pgbench.concurrency,
            "ledger_function_via_pgbench_tps": best_function.tps,
            "ledger_function_via_pgbench_concurrency": best_function.concurrency,
            "ratio": ratio, "target": TARGET_RATIO, "target_met": ratio >= TARGET_RATIO,
        },
    }  # fmt: skip


# --- reporting --------------------------------------------------------------------------------------------


def triple(*values: float | None) -> str:
    return " / ".join("n/a" if v is None else f"{v:.2f}" for v in values)


def result_rows(results: dict) -> list[list[str]]:
    rows = []
    for lg, pg, fn in zip(results["ledger"], results["pgbench"], results["ledger_function_via_pgbench"], strict=True):
        loads = [Load(**run["load"]) for run in (lg, fn, pg)]
        transactions = [lg["transfers"], fn["transactions"], pg["transactions"]]
        seconds = [run["seconds"] for run in (lg, fn, pg)]
        rows.append([
            str(lg["concurrency"]),
            f"{lg['tps']:,.0f}", f"{lg['p50_ms']:.2f}", f"{lg['p99_ms']:.2f}",
            f"{pg['tps']:,.0f}", f"{pg['latency_avg_ms']:.2f}",
            f"{lg['tps'] / pg['tps']:.2f}",
            f"{fn['tps']:,.0f}",
            triple(*(load.client_cores for load in loads)),
            triple(*(cpu_ms_per_txn(load.server_cores, s, n) for load, s, n in zip(loads, seconds, transactions, strict=True))),
            triple(*(load.other_cores for load in loads)),
        ])  # fmt: skip
    return rows


HEADERS = [
    "clients", "ledger tps", "p50 ms", "p99 ms", "pgbench tps", "pgbench avg ms", "ledger/pgbench",
    "ledger fn via pgbench tps", "client cores L/F/P", "server CPU ms/txn L/F/P", "other cores L/F/P",
]  # fmt: skip
LEGEND = (
    "ledger: ledger.transfer() from Python; pgbench: the hand-written transfer transaction; "
    "ledger fn via pgbench (F): the same ledger_post_entry call ledger.transfer() sends, driven by pgbench. "
    "CPU columns, in cores (1.00 = one core busy for the whole run) or CPU ms per transaction: "
    "client = the load generator (this Python process, or pgbench); server = the PostgreSQL processes; "
    "other = the rest of the machine (other programs competing for the same cores)."
)


def best_line(best: dict) -> str:
    verdict = "met" if best["target_met"] else "not met"
    return (
        f"Best vs best: ledger {best['ledger_tps']:,.0f} tps (x{best['ledger_concurrency']}) / "
        f"pgbench {best['pgbench_tps']:,.0f} tps (x{best['pgbench_concurrency']}) = {best['ratio']:.2f} "
        f"(target >= {best['target']}: {verdict}); ledger fn via pgbench: "
        f"{best['ledger_function_via_pgbench_tps']:,.0f} tps (x{best['ledger_function_via_pgbench_concurrency']})"
    )


def noise_warnings(results: dict) -> list[str]:
    """What made this run noisy, if anything: other programs, the cores' speed drifting, failures."""
    loads = [
        Load(**run["load"]) for run in results["ledger"] + results["pgbench"] + results["ledger_function_via_pgbench"]
    ]
    warnings = []
    busiest = max(load.other_cores for load in loads)
    if busiest >= NOISY_OTHER_CORES:
        warnings.append(f"Other programs used up to {busiest:.2f} cores during the runs.")
    fastest, slowest = min(load.cpu_probe_ms for load in loads), max(load.cpu_probe_ms for load in loads)
    if slowest > fastest * NOISY_SPEED_DRIFT:
        warnings.append(
            f"The cores' speed drifted during the runs: a fixed piece of work took {fastest:.0f} to {slowest:.0f} ms."
        )
    rejected = sum(run["rejected"] for run in results["ledger"])
    failed = sum(run["failed"] for run in results["pgbench"] + results["ledger_function_via_pgbench"])
    if rejected or failed:
        warnings.append(f"{rejected} ledger transfers were rejected and {failed} pgbench transactions failed.")
    if warnings:
        warnings.append("These numbers are noisy: compare columns within a row rather than across runs.")
    return warnings


@dataclass
class LedgerReport:
    """The results for reading: the table and its legend, the noise warnings and the best-vs-best line."""

    results: dict

    def print(self) -> None:
        print_table("Ledger transfers vs pgbench (transactions per second)", HEADERS, result_rows(self.results),
                    LEGEND)  # fmt: skip
        for warning in noise_warnings(self.results):
            console.print(warning, style="yellow")
        console.print(best_line(self.results["best"]), style="bold")

    def markdown(self) -> str:
        lines = [
            "| " + " | ".join(HEADERS) + " |",
            "|" + "|".join("---:" for _ in HEADERS) + "|",
            *("| " + " | ".join(row) + " |" for row in result_rows(self.results)),
            "",
            LEGEND,
            "",
            f"**{best_line(self.results['best'])}**",
        ]
        if warnings := noise_warnings(self.results):
            lines += ["", " ".join(warnings)]
        return "\n".join(lines)


# --- command line -----------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each measured run (default 10)")
    parser.add_argument(
        "--concurrency", default="1,8,32,64",
        type=lambda text: [int(c) for c in text.split(",") if c.strip()],
        help="comma-separated client counts (default 1,8,32,64)",
    )  # fmt: skip
    parser.add_argument("--accounts", type=int, default=10_000, help="member accounts (default 10000)")
    return parse_with(parser, argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with backing_server("postgres") as server_url:
        fresh_database(server_url)
        results = asyncio.run(benchmark(server_url, args))
    publish(results, LedgerReport(results))


if __name__ == "__main__":
    main()
