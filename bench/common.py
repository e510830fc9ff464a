"""What the benchmarks share: services and a fresh database, CPU accounting, progress bars, results, reports, CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

import asyncpg
import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from alliance.db.engine import asyncpg_dsn
from alliance.db.migrate import upgrade
from alliance.embedded import EmbeddedServices

BENCH_DATABASE = "alliance_bench"
EMBEDDED_ROOT = Path(".alliance/bench")
OUT_DIR = Path(__file__).resolve().parent / "out"

console = Console()
T = TypeVar("T")


# --- the services and the database -----------------------------------------------------------------------


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


def fresh_database(server_url: str) -> None:
    """A fresh database BENCH_DATABASE on the server (dropped first if it exists), migrated."""
    with console.status(f"creating and migrating the {BENCH_DATABASE} database"):
        asyncio.run(recreate_database(server_url))
        upgrade(with_database(server_url, BENCH_DATABASE))  # alembic runs its own event loop: not inside ours


@contextmanager
def fresh_services() -> Iterator[tuple[str, str]]:
    """The PostgreSQL server and Redis to benchmark on, with a fresh, migrated database `alliance_bench`."""
    with backing_server("postgres") as server_url, backing_server("redis") as redis_url:
        fresh_database(server_url)
        yield server_url, redis_url


# --- CPU accounting ---------------------------------------------------------------------------------------


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


def cpu_ms_per_txn(cores: float | None, seconds: float, transactions: int) -> float | None:
    return None if cores is None else cores * seconds / max(transactions, 1) * 1000


def cpu_ms(cores: float | None, run: dict, count: str) -> str:
    """CPU ms per unit of a run's work, for a table: `count` names the run's field that counts the units
    ("requests", "entries", "transactions"); 0.00 where the CPU is not known."""
    return f"{cpu_ms_per_txn(cores, run['seconds'], run[count]) or 0:.2f}"


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


async def facts_and_meter(admin: asyncpg.Connection) -> tuple[dict[str, str], CpuMeter]:
    """The server's facts, and the CPU meter of the runs measured from `admin`'s server."""
    return await server_facts(admin), CpuMeter(admin.get_server_pid())


@asynccontextmanager
async def sampling(seconds: float, sample: Callable[[], object]) -> AsyncIterator[None]:
    """Calls sample() now and every `seconds` after, in a task, until the block ends."""
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            sample()
            try:
                await asyncio.wait_for(stop.wait(), seconds)
            except TimeoutError:
                pass

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        stop.set()
        await task


# --- progress ---------------------------------------------------------------------------------------------


def run_progress() -> Progress:
    """Bars for timed runs (see with_progress)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console)


def count_progress(label: str) -> Progress:
    """Bars for counted work: `label` (a TextColumn format), the bar, done/total, time elapsed."""
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)


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


# --- results documents ------------------------------------------------------------------------------------


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


def document_head(benchmark: str, args: argparse.Namespace, settings: dict, server: dict[str, str]) -> dict:
    """What every results document starts with: which benchmark, when, how, and on what."""
    return {
        "benchmark": benchmark,
        "started_at": args.started_at,
        "command": args.command,
        "database": "ALLIANCE_DATABASE_URL" if os.environ.get("ALLIANCE_DATABASE_URL") else "embedded",
        "settings": settings,
        "machine": machine_facts(),
        "server": server,
    }


def write_json(results: dict) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{results['benchmark']}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    return path


# --- reporting --------------------------------------------------------------------------------------------


def print_table(title: str, headers: list[str], rows: list[list[str]], legend: str) -> None:
    """A table (the first column left-aligned, the others right-aligned) and its legend."""
    table = Table(title=title)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(legend, style="dim")


class Readable(Protocol):
    """What publish() prints: a report for the terminal, and as Markdown."""

    def print(self) -> None: ...

    def markdown(self) -> str: ...


@dataclass
class Report:
    """A benchmark's results for reading: a table with a legend, and the verdicts."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    legend: str
    verdicts: list[str]

    def print(self) -> None:
        print_table(self.title, self.headers, self.rows, self.legend)
        for line in self.verdicts:
            console.print(line, style="bold")

    def markdown(self) -> str:
        return "\n".join([
            "| " + " | ".join(self.headers) + " |",
            "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(self.headers))) + "|",
            *("| " + " | ".join(row) + " |" for row in self.rows),
            "",
            self.legend,
            "",
            *(f"- **{line}**" for line in self.verdicts),
        ])  # fmt: skip


def publish(results: dict, report: Readable) -> None:
    """The table and verdicts, the JSON file, and the Markdown snippet for bench/RESULTS.md."""
    report.print()
    path = write_json(results)
    console.print(f"\nresults: {path}\n\nfor bench/RESULTS.md:\n")
    console.print(report.markdown(), markup=False, highlight=False, soft_wrap=True)


# --- command line -----------------------------------------------------------------------------------------


def parse_with(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The arguments, with the command as documented and when it started."""
    args = parser.parse_args(argv)
    args.command = " ".join(["uv run", parser.prog, *argv])
    args.started_at = datetime.now().astimezone().isoformat(timespec="seconds")
    return args

