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
import json
import os
import random
import re
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import asyncpg
import psutil
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from alliance.db.engine import asyncpg_dsn
from alliance.db.migrate import upgrade
from alliance.embedded import EmbeddedServices, pg_bin
from alliance.ledger import AccountKind, LedgerRejected
from alliance.ledger import service as ledger

BENCH_DATABASE = "alliance_bench"
EMBEDDED_ROOT = Path(".alliance/bench")
OUT_DIR = Path(__file__).resolve().parent / "out"
TENANT_ID = 1
INITIAL_BALANCE = 10**12  # no transfer ever runs out of points: every call is a successful entry
SETUP_CONNECTIONS = 8  # setup's parallel transactions; the currency gets one issuance shard per connection
TARGET_RATIO = 0.7
NOISY_OTHER_CORES = 0.2  # other programs using more than this during a run make it noisy
NOISY_SPEED_DRIFT = 1.25  # so does the cores' speed varying more than this between runs

console = Console()
T = TypeVar("T")


# --- results ----------------------------------------------------------------------------------------------


@dataclass
class Load:
    """CPU used during a run, in cores (1.0 = one core busy the whole time)."""

    client_cores: float  # the load generator: this Python process, or the pgbench process
    server_cores: float | None  # the PostgreSQL processes (None: the server is not on this machine)
    machine_cores: float  # everything on the machine, other programs included
    cpu_probe_ms: float  # cpu_probe_ms() just before the run: the machine's speed at the time

    @property
    def other_cores(self) -> float:
        """What neither the client nor the server used: other programs competing for the cores."""
        return max(self.machine_cores - self.client_cores - (self.server_cores or 0.0), 0.0)


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


def cpu_ms_per_txn(cores: float | None, seconds: float, transactions: int) -> float | None:
    return None if cores is None else cores * seconds / max(transactions, 1) * 1000


# --- CPU accounting ---------------------------------------------------------------------------------------


@dataclass
class CpuSnapshot:
    wall: float
    own: float  # this process, user + system
    children: float  # our finished children (pgbench), user + system
    server: float | None  # the postmaster and all its backends, finished ones included
    machine_busy: float  # all cores, all processes


class CpuMeter:
    """Reads the CPU time of the client, of PostgreSQL and of the machine, so a run can say who used what."""

    def __init__(self, backend_pid: int) -> None:
        self.postmaster = self._local_postmaster(backend_pid)
        # The server's processes when idle: its background workers and our admin connection.
        self.idle_processes = len(self.postmaster.children()) if self.postmaster else 0

    @staticmethod
    def _local_postmaster(backend_pid: int) -> psutil.Process | None:
        try:
            postmaster = psutil.Process(backend_pid).parent()
            if postmaster is None or "postgres" not in postmaster.name():
                return None
            postmaster.cpu_times()  # readable by us? (not when another user runs it and we are not root)
        except psutil.Error:
            return None  # a remote server (a pid of ours means nothing there), or not ours to read
        return postmaster

    def _server_seconds(self) -> float | None:
        if self.postmaster is None:
            return None
        # Backends that exited (pgbench's, at its end) are in the postmaster's children_* times once reaped.
        pm = self.postmaster.cpu_times()
        total = pm.user + pm.system + pm.children_user + pm.children_system
        for backend in self.postmaster.children():
            try:
                times = backend.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    async def settle(self, timeout: float = 3.0) -> None:
        """Waits until the backends of finished clients are gone. An exiting backend's CPU moves into the
        postmaster's children_* times when it is reaped: a snapshot taken meanwhile could miss it."""
        deadline = time.perf_counter() + timeout
        while self.postmaster is not None and time.perf_counter() < deadline:
            if len(self.postmaster.children()) <= self.idle_processes:
                return
            await asyncio.sleep(0.02)

    def snapshot(self) -> CpuSnapshot:
        own = psutil.Process().cpu_times()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        machine = psutil.cpu_times()
        return CpuSnapshot(
            wall=time.perf_counter(),
            own=own.user + own.system,
            children=children.ru_utime + children.ru_stime,
            server=self._server_seconds(),
            machine_busy=machine.user + machine.nice + machine.system + machine.irq + machine.softirq
            + machine.steal,
        )


def cpu_probe_ms() -> float:
    """How long a fixed piece of pure-Python work takes right now. On a shared virtual machine the cores'
    speed drifts with the host's load (no steal time shows it): a drift between runs is visible here."""
    started = time.process_time()
    total = 0
    for i in range(300_000):
        total += i * i
    return (time.process_time() - started) * 1000


def load_between(before: CpuSnapshot, after: CpuSnapshot, *, client_is_child: bool, probe_ms: float) -> Load:
    wall = after.wall - before.wall
    client = (after.children - before.children) if client_is_child else (after.own - before.own)
    server = None if before.server is None or after.server is None else (after.server - before.server) / wall
    return Load(
        client_cores=client / wall,
        server_cores=server,
        machine_cores=(after.machine_busy - before.machine_busy) / wall,
        cpu_probe_ms=probe_ms,
    )


# --- the database -----------------------------------------------------------------------------------------


@contextmanager
def backing_server(kind: str) -> Iterator[str]:
    """The URL of a service to benchmark on ("postgres" or "redis"): the configured one, or an embedded
    one we run meanwhile."""
    configured = os.environ.get("ALLIANCE_DATABASE_URL" if kind == "postgres" else "ALLIANCE_REDIS_URL")
    if configured:
        yield configured
        return
    with console.status(f"starting the embedded {kind}"):
        services = EmbeddedServices(EMBEDDED_ROOT, postgres=kind == "postgres", redis=kind == "redis").start()
    try:
        yield services.database_url if kind == "postgres" else services.redis_url
    finally:
        services.stop()


def with_database(url: str, database: str) -> str:
    return make_url(asyncpg_dsn(url)).set(database=database).render_as_string(hide_password=False)


async def recreate_database(server_url: str) -> None:
    maintenance = server_url
    if make_url(server_url).database in (None, BENCH_DATABASE):
        maintenance = with_database(server_url, "postgres")  # one cannot drop the database one is in
    conn = await asyncpg.connect(asyncpg_dsn(maintenance))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    finally:
        await conn.close()


async def checkpoint(conn: asyncpg.Connection) -> None:
    """Flush dirty pages before each run, so no run pays for the previous one's writes."""
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        pass  # a configured server may not let us: the runs are then a little noisier


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


async def with_progress(progress: Progress, label: str, seconds: float, work: Awaitable[T]) -> T:
    """Awaits `work`, showing a bar that fills over its expected duration."""
    task_id = progress.add_task(label, total=seconds)
    job = asyncio.ensure_future(work)
    started = time.perf_counter()
    while not job.done():
        progress.update(task_id, completed=min(time.perf_counter() - started, seconds))
        await asyncio.wait({job}, timeout=0.25)
    progress.update(task_id, completed=seconds)
    return job.result()


async def server_facts(conn: asyncpg.Connection) -> dict[str, str]:
    names = ("server_version", "shared_buffers", "fsync", "synchronous_commit", "max_wal_size")
    return {name: await conn.fetchval(f"SHOW {name}") for name in names}


def machine_facts() -> dict[str, object]:
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "asyncpg": asyncpg.__version__,
    }


async def benchmark(server_url: str, args: argparse.Namespace) -> dict:
    url = with_database(server_url, BENCH_DATABASE)
    dsn = asyncpg_dsn(url)
    with console.status(f"setting up {args.accounts:,} funded ledger accounts and the pgbench tables"):
        accounts = await set_up_ledger(dsn, args.accounts)
        admin = await asyncpg.connect(dsn)
        await set_up_pgbench_tables(admin, args.accounts)
        await admin.execute("VACUUM ANALYZE")
        facts = await server_facts(admin)
        meter = CpuMeter(admin.get_server_pid())
    # Opened in one go on a fresh database, the member accounts have consecutive ids: pgbench picks from a range.
    if accounts != list(range(accounts[0], accounts[-1] + 1)):
        raise RuntimeError("the member accounts' ids are not consecutive")
    baseline = PgbenchWorkload("transfer-transaction", TRANSFER_TRANSACTION_SCRIPT, 1, args.accounts)
    control = PgbenchWorkload("ledger-function", LEDGER_FUNCTION_SCRIPT, accounts[0], accounts[-1])

    runs: dict[str, list] = {"ledger": [], baseline.name: [], control.name: []}
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with tempfile.TemporaryDirectory() as scratch, Progress(*columns, console=console) as progress:
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
    return {
        "benchmark": "ledger",
        "started_at": args.started_at,
        "command": args.command,
        "database": "ALLIANCE_DATABASE_URL" if os.environ.get("ALLIANCE_DATABASE_URL") else "embedded",
        "settings": {"accounts": args.accounts, "seconds": args.seconds, "concurrency": args.concurrency},
        "machine": machine_facts(),
        "server": server,
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


def print_table(results: dict) -> None:
    table = Table(title="Ledger transfers vs pgbench (transactions per second)")
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in result_rows(results):
        table.add_row(*row)
    console.print(table)
    console.print(LEGEND, style="dim")
    for warning in noise_warnings(results):
        console.print(warning, style="yellow")
    console.print(best_line(results["best"]), style="bold")


def markdown(results: dict) -> str:
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---:" for _ in HEADERS) + "|",
        *("| " + " | ".join(row) + " |" for row in result_rows(results)),
        "",
        LEGEND,
        "",
        f"**{best_line(results['best'])}**",
    ]
    if warnings := noise_warnings(results):
        lines += ["", " ".join(warnings)]
    return "\n".join(lines)


def write_json(results: dict) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"ledger-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    return path


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
    args = parser.parse_args(argv)
    args.command = " ".join(["uv run python -m bench.ledger", *argv])
    args.started_at = datetime.now().astimezone().isoformat(timespec="seconds")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with backing_server("postgres") as server_url:
        with console.status(f"creating and migrating the {BENCH_DATABASE} database"):
            asyncio.run(recreate_database(server_url))
            upgrade(with_database(server_url, BENCH_DATABASE))  # alembic runs its own event loop: not inside ours
        results = asyncio.run(benchmark(server_url, args))
    print_table(results)
    path = write_json(results)
    console.print(f"\nresults: {path}\n\nfor bench/RESULTS.md:\n")
    console.print(markdown(results), markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
