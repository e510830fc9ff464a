"""The HTTP API vs pgbench, on one PostgreSQL, in one run.

    uv run python -m bench.http [--seconds 10] [--concurrency 64] [--members 10000] [--batch 1000]

1. The services: ALLIANCE_DATABASE_URL / ALLIANCE_REDIS_URL if set, else embedded ones under
   .alliance/bench. A fresh database `alliance_bench` is created there and migrated.
2. The API: `alliance serve` in a subprocess on a free port (production settings, a rate limit too high to
   matter), an operator key made as `alliance admin create-key` makes it, one brand onboarded through the
   operator API, N members created and funded through the brand API.
3. Three workloads, each for a fixed time, by a keep-alive httpx client with that many requests in flight:
   single credits, gifts between two random members, and bulk batches of credits. Throughput, latency,
   errors, the CPU of the load generator, the API process and PostgreSQL, and the API's peak RSS (sampled).
4. pgbench's two-account transfer transaction (bench.ledger's) on the same server and database.
5. A table, the verdict on each target, JSON results in bench/out/ and a Markdown snippet for
   bench/RESULTS.md.

The load generator, the API and PostgreSQL share the machine's cores; the CPU columns say who took what.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import asyncpg
import httpx
import psutil
from joserfc.jwk import OKPKey
from rich.progress import Progress

from alliance.auth import service as keys
from alliance.auth.keys import KeyKind
from alliance.db import Database, run_in_transaction
from alliance.processes import spawn_child
from bench.common import (
    BENCH_DATABASE,
    EMBEDDED_ROOT,
    CpuMeter,
    Load,
    Report,
    checkpoint,
    console,
    cpu_ms,
    cpu_probe_ms,
    document_head,
    fresh_services,
    load_between,
    parse_with,
    publish,
    run_progress,
    sampling,
    with_database,
    with_progress,
)
from bench.ledger import (
    INITIAL_BALANCE,
    TRANSFER_TRANSACTION_SCRIPT,
    PgbenchRun,
    PgbenchWorkload,
    measuring_connection,
    run_pgbench,
)

SINGLE_RATIO_TARGET = 0.5  # single operations' requests/s over pgbench's best transactions/s
P99_TARGET_MS = 50.0
BULK_POSTINGS_TARGET = 20_000  # postings/s; each credit is an entry of two postings
RSS_TARGET_MB = 200.0
POSTINGS_PER_CREDIT = 2
RSS_SAMPLE_SECONDS = 0.05
API_START_TIMEOUT = 60.0
KEEPALIVE_EXPIRY = 2.0
REQUEST_TIMEOUT = 300.0  # a bulk batch may queue behind many others: latency is measured, never cut short


# --- the services and the API process ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ApiServer:
    process: subprocess.Popen
    url: str
    log_path: Path
    peak_rss: int = 0  # bytes, since the last reset_peak()
    rss_samples: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, database_url: str, redis_url: str) -> ApiServer:
        """`alliance serve` as deployed: production settings (JSON logs, a data key from the environment)."""
        port = free_port()
        log_path = EMBEDDED_ROOT / "api.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "ALLIANCE_ENV": "production",
            "ALLIANCE_DATA_KEY": base64.b64encode(os.urandom(32)).decode(),
            # Production requires the platform's own signing key (countersignatures); a fresh one will do here.
            "ALLIANCE_PLATFORM_SIGNING_KEY": OKPKey.generate_key("Ed25519", private=True).as_pem(private=True).decode(),
            "ALLIANCE_DATABASE_URL": database_url,
            "ALLIANCE_REDIS_URL": redis_url,
            # The benchmark is one key sending as fast as it can: the limit would measure itself.
            "ALLIANCE_RATE_LIMIT_PER_SECOND": str(10**9),
        }
        process = spawn_child(
            [sys.executable, "-m", "alliance", "serve", "--host", "127.0.0.1", "--port", str(port)],
            death_signal=signal.SIGTERM, log_path=log_path, env=env,
        )  # fmt: skip
        return cls(process=process, url=f"http://127.0.0.1:{port}", log_path=log_path)

    async def wait_ready(self) -> None:
        deadline = time.perf_counter() + API_START_TIMEOUT
        async with httpx.AsyncClient(base_url=self.url) as client:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the API exited with {self.process.returncode}; see {self.log_path}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the API was not ready within {API_START_TIMEOUT:.0f} s; see {self.log_path}")

    def _tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        return sum(p.cpu_times().user + p.cpu_times().system for p in self._tree())

    def reset_peak(self) -> None:
        self.peak_rss = 0

    def sample_rss(self) -> None:
        """The API's resident memory now (running_api samples it every RSS_SAMPLE_SECONDS)."""
        rss = sum(p.memory_info().rss for p in self._tree())
        self.peak_rss = max(self.peak_rss, rss)
        self.rss_samples.append(rss)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the brand and its members ----------------------------------------------------------------------------


async def create_operator_key(url: str) -> str:
    """What `alliance admin create-key` does, on the benchmark's database."""
    database = Database.connect(url, pool_size=1, application_name="alliance-bench")
    try:
        _, issued = await run_in_transaction(
            database.sessions, lambda s: keys.create_key(s, kind=KeyKind.OPERATOR, name="bench", tenant_id=None)
        )
    finally:
        await database.dispose()
    return issued.secret


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def expect(response: httpx.Response, status: int) -> dict:
    if response.status_code != status:
        request = response.request
        raise RuntimeError(f"{request.method} {request.url.path}: {response.status_code} {response.text}")
    return response.json()


async def create_tenant(client: httpx.AsyncClient, operator: dict[str, str], tenant: dict) -> tuple[int, dict[str, str]]:
    """A tenant created through the operator API with an API key: its id and the headers of its key."""
    created = expect(await client.post("/v1/admin/tenants", headers=operator, json=tenant), 201)
    key = expect(await client.post(f"/v1/admin/tenants/{created['id']}/keys", headers=operator,
                                   json={"name": "bench"}), 201)
    return created["id"], bearer(key["secret"])


async def onboard_brand(client: httpx.AsyncClient, operator: dict[str, str]) -> dict[str, str]:
    """One brand admitted through the operator API; returns the headers of its API key."""
    _, brand = await create_tenant(client, operator, {
        "code": "bench-brand", "name": "Bench Brand", "currency_code": "BENCH", "point_value": "0.1"})
    return brand


async def create_members(client: httpx.AsyncClient, brand: dict[str, str], names: list[str]) -> None:
    for name in names:
        expect(await client.post("/v1/members", headers=brand, json={"external_id": name}), 201)


def credit_item(member: str, amount: int, key: str) -> dict:
    return {"kind": "credit", "member": member, "amount": amount, "reason": "bench", "idempotency_key": key}


async def set_up_members(
    client: httpx.AsyncClient, brand: dict[str, str], count: int, concurrency: int, batch: int
) -> list[str]:
    """`count` members, each funded through the bulk endpoint so that no gift ever runs out of points."""
    members = [f"m{n:07d}" for n in range(count)]
    await asyncio.gather(*(create_members(client, brand, members[i::concurrency]) for i in range(concurrency)))
    await fund_members(client, brand, members, batch)
    return members


async def fund_members(client: httpx.AsyncClient, brand: dict[str, str], members: list[str], batch: int) -> None:
    """INITIAL_BALANCE points to each member, credited through the bulk endpoint, `batch` a request."""
    for start in range(0, len(members), batch):
        items = [credit_item(m, INITIAL_BALANCE, f"fund-{m}") for m in members[start:start + batch]]
        results = expect(await client.post("/v1/bulk/operations", headers=brand, json={"items": items}), 200)
        if any(r["status"] != "applied" for r in results["results"]):
            raise RuntimeError(f"funding failed: {results}")


# --- the workloads ----------------------------------------------------------------------------------------

class Answer(NamedTuple):
    """What one request of a workload got: its HTTP status, the journal entries it applied and, when the workload
    reads it, the problem code of an answer it did not expect (an error, even with a 2xx status)."""

    status: int
    entries: int
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and self.problem is None


# One request of a workload, given a fresh idempotency key.
Send = Callable[[httpx.AsyncClient, str], Awaitable[Answer]]


def single_credit(brand: dict[str, str], members: list[str]) -> Send:
    async def send(client: httpx.AsyncClient, key: str) -> Answer:
        response = await client.post(f"/v1/members/{random.choice(members)}/credits",
                                     json={"amount": random.randint(1, 100), "reason": "bench"},
                                     headers=brand | {"idempotency-key": key})
        return Answer(response.status_code, 1)

    return send


def gift(brand: dict[str, str], members: list[str]) -> Send:
    async def send(client: httpx.AsyncClient, key: str) -> Answer:
        giver, receiver = random.sample(members, 2)
        response = await client.post(f"/v1/members/{giver}/gifts",
                                     json={"to": receiver, "amount": random.randint(1, 100)},
                                     headers=brand | {"idempotency-key": key})
        return Answer(response.status_code, 1)

    return send


def bulk_credits(brand: dict[str, str], members: list[str], batch: int) -> Send:
    async def send(client: httpx.AsyncClient, key: str) -> Answer:
        items = [credit_item(random.choice(members), random.randint(1, 100), f"{key}-{n}") for n in range(batch)]
        response = await client.post("/v1/bulk/operations", json={"items": items}, headers=brand)
        if response.status_code != 200:
            return Answer(response.status_code, 0)
        return Answer(200, sum(r["status"] == "applied" for r in response.json()["results"]))

    return send


@dataclass
class HttpRun:
    workload: str
    concurrency: int
    seconds: float
    requests: int  # answered 2xx, as expected
    errors: dict[str, int]  # other answers, by status (and problem code, where the workload reads it)
    entries: int  # journal entries applied
    rps: float
    entries_per_s: float
    postings_per_s: float
    p50_ms: float
    p99_ms: float
    api_cores: float
    peak_rss_mb: float
    load: Load


async def request_loop(client: httpx.AsyncClient, send: Send, deadline: float, key_prefix: str):
    """One in-flight request at a time until the deadline: latencies of successes (s), errors by (status,
    problem code), entries."""
    latencies: list[float] = []
    errors: Counter[tuple[int, str]] = Counter()
    entries = 0
    for seq in itertools.count():
        if time.perf_counter() >= deadline:
            break
        started = time.perf_counter()
        answer = await send(client, f"{key_prefix}-{seq}")
        if answer.ok:
            latencies.append(time.perf_counter() - started)
            entries += answer.entries
        else:
            errors[answer.status, answer.problem or ""] += 1
    return latencies, errors, entries


async def run_http(
    name: str, send: Send, client: httpx.AsyncClient, api: ApiServer, concurrency: int, seconds: float,
    meter: CpuMeter,
) -> HttpRun:  # fmt: skip
    run_id = uuid.uuid4().hex[:12]  # idempotency keys never repeat, even across runs on one database
    await meter.settle()
    probe_ms = cpu_probe_ms()
    api.reset_peak()
    api_before, before = api.cpu_seconds(), meter.snapshot()
    deadline = before.wall + seconds
    results = await asyncio.gather(
        *(request_loop(client, send, deadline, f"{run_id}-w{w}") for w in range(concurrency))
    )
    api_after, after = api.cpu_seconds(), meter.snapshot()
    elapsed = after.wall - before.wall  # up to the last answer: requests in flight at the deadline count
    latencies = sorted(itertools.chain.from_iterable(lat for lat, _, _ in results))
    errors = sum((e for _, e, _ in results), Counter())
    entries = sum(e for _, _, e in results)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [0.0] * 99
    return HttpRun(
        workload=name,
        concurrency=concurrency,
        seconds=round(elapsed, 3),
        requests=len(latencies),
        errors={f"{status} {problem}".strip(): n for (status, problem), n in sorted(errors.items())},
        entries=entries,
        rps=len(latencies) / elapsed,
        entries_per_s=entries / elapsed,
        postings_per_s=entries * POSTINGS_PER_CREDIT / elapsed,
        p50_ms=cuts[49] * 1000,
        p99_ms=cuts[98] * 1000,
        api_cores=(api_after - api_before) / elapsed,
        peak_rss_mb=api.peak_rss / 2**20,
        load=load_between(before, after, client_is_child=False, probe_ms=probe_ms),
    )


# --- running it all ---------------------------------------------------------------------------------------


@asynccontextmanager
async def running_api(url: str, redis_url: str) -> AsyncIterator[ApiServer]:
    """The API on the benchmark's database, its RSS sampled all along; stopped on the way out."""
    api = ApiServer.start(url, redis_url)
    try:
        async with sampling(RSS_SAMPLE_SECONDS, api.sample_rss):
            yield api
    finally:
        api.stop()


def api_client(api: ApiServer, concurrency: int) -> httpx.AsyncClient:
    """A keep-alive client for `concurrency` requests in flight."""
    # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them, so the client
    # never sends on a connection the server is closing (a ReadError, not a measurement).
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency,
                          keepalive_expiry=KEEPALIVE_EXPIRY)
    return httpx.AsyncClient(base_url=api.url, limits=limits, timeout=REQUEST_TIMEOUT)


async def run_workloads(
    progress: Progress, workloads: list[tuple[str, Send]], client: httpx.AsyncClient, api: ApiServer,
    admin: asyncpg.Connection, meter: CpuMeter, concurrency: int, seconds: float,
) -> list[HttpRun]:  # fmt: skip
    """Each workload in turn, after a checkpoint."""
    runs = []
    for name, send in workloads:
        await checkpoint(admin)
        runs.append(await with_progress(
            progress, f"{name:<22} x{concurrency}", seconds,
            run_http(name, send, client, api, concurrency, seconds, meter),
        ))  # fmt: skip
    return runs


async def run_pgbench_baseline(
    progress: Progress, url: str, admin: asyncpg.Connection, meter: CpuMeter, concurrencies: list[int],
    seconds: int, accounts: int,
) -> list[PgbenchRun]:  # fmt: skip
    """pgbench's two-account transfer transaction between pgb_accounts 1..accounts, at each client count."""
    baseline = PgbenchWorkload("transfer-transaction", TRANSFER_TRANSACTION_SCRIPT, 1, accounts)
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        script = baseline.write_to(Path(scratch))
        for concurrency in concurrencies:
            await checkpoint(admin)
            runs.append(await with_progress(
                progress, f"{'pgbench transaction':<22} x{concurrency}", seconds,
                run_pgbench(url, baseline, script, concurrency, seconds, meter),
            ))  # fmt: skip
    return runs


async def benchmark(server_url: str, redis_url: str, args: argparse.Namespace) -> dict:
    url = with_database(server_url, BENCH_DATABASE)
    async with running_api(url, redis_url) as api, api_client(api, args.concurrency) as client:
        with console.status(f"starting the API, onboarding a brand, creating {args.members:,} members"):
            await api.wait_ready()
            brand = await onboard_brand(client, bearer(await create_operator_key(url)))
            members = await set_up_members(client, brand, args.members, args.concurrency, args.batch)
            admin, facts, meter = await measuring_connection(url, args.members)
        workloads = [
            ("credit", single_credit(brand, members)),
            ("gift", gift(brand, members)),
            (f"bulk x{args.batch} credits", bulk_credits(brand, members, args.batch)),
        ]
        with run_progress() as progress:
            http_runs = await run_workloads(progress, workloads, client, api, admin, meter, args.concurrency,
                                            args.seconds)
            pgbench_runs = await run_pgbench_baseline(progress, url, admin, meter, args.pgbench_concurrency,
                                                      args.seconds, args.members)
        await admin.close()
    return results_document(args, facts, http_runs, pgbench_runs, max(api.rss_samples, default=0))


def results_document(
    args: argparse.Namespace, server: dict[str, str], http_runs: list[HttpRun], pgbench_runs: list[PgbenchRun],
    peak_rss: int,
) -> dict:  # fmt: skip
    single = [r for r in http_runs if not r.workload.startswith("bulk")]
    bulk = next(r for r in http_runs if r.workload.startswith("bulk"))
    best_pgbench = max(pgbench_runs, key=lambda r: r.tps)
    settings = {"seconds": args.seconds, "concurrency": args.concurrency, "members": args.members,
                "batch": args.batch, "pgbench_concurrency": args.pgbench_concurrency}
    return {
        **document_head("http", args, settings, server),
        "http": [asdict(r) for r in http_runs],
        "pgbench": [asdict(r) for r in pgbench_runs],
        "peak_rss_mb": peak_rss / 2**20,
        "targets": {
            "single_ratio": {
                r.workload: {"ratio": r.rps / best_pgbench.tps, "p99_ms": r.p99_ms,
                             "met": r.rps / best_pgbench.tps >= SINGLE_RATIO_TARGET and r.p99_ms <= P99_TARGET_MS}
                for r in single
            },
            "pgbench_best_tps": best_pgbench.tps,
            "pgbench_best_concurrency": best_pgbench.concurrency,
            "bulk_postings_per_s": {"value": bulk.postings_per_s, "met": bulk.postings_per_s >= BULK_POSTINGS_TARGET},
            "api_rss_mb": {"value": peak_rss / 2**20, "met": peak_rss / 2**20 <= RSS_TARGET_MB},
        },
    }  # fmt: skip


# --- reporting --------------------------------------------------------------------------------------------

HEADERS = [
    "workload", "clients", "requests/s", "entries/s", "postings/s", "p50 ms", "p99 ms", "errors",
    "x pgbench best", "cores client / API / PG", "PG CPU ms/entry", "API CPU ms/entry", "peak API RSS MB",
]  # fmt: skip


def http_row(run: dict, pgbench_best_tps: float) -> list[str]:
    load = Load(**run["load"])
    return [
        run["workload"], str(run["concurrency"]), f"{run['rps']:,.0f}", f"{run['entries_per_s']:,.0f}",
        f"{run['postings_per_s']:,.0f}", f"{run['p50_ms']:.1f}", f"{run['p99_ms']:.1f}",
        ", ".join(f"{n} x {status}" for status, n in run["errors"].items()) or "0",
        f"{run['entries_per_s'] / pgbench_best_tps:.2f}",
        f"{load.client_cores:.2f} / {run['api_cores']:.2f} / {load.server_cores or 0:.2f}",
        cpu_ms(load.server_cores, run, "entries"), cpu_ms(run["api_cores"], run, "entries"),
        f"{run['peak_rss_mb']:.0f}",
    ]  # fmt: skip


def pgbench_row(run: dict) -> list[str]:
    load = Load(**run["load"])
    return [
        "pgbench transfer transaction", str(run["concurrency"]), f"{run['tps']:,.0f}", f"{run['tps']:,.0f}",
        f"{run['tps'] * 2:,.0f}", "", f"(avg {run['latency_avg_ms']:.1f})", str(run["failed"]), "",
        f"{load.client_cores:.2f} / - / {load.server_cores or 0:.2f}",
        cpu_ms(load.server_cores, run, "transactions"), "", "",
    ]  # fmt: skip


def result_rows(results: dict) -> list[list[str]]:
    best = results["targets"]["pgbench_best_tps"]
    return [http_row(r, best) for r in results["http"]] + [pgbench_row(r) for r in results["pgbench"]]


def verdict_lines(results: dict) -> list[str]:
    targets = results["targets"]
    lines = [
        f"{workload}: {t['ratio']:.2f} x pgbench's best ({targets['pgbench_best_tps']:,.0f} tps at "
        f"x{targets['pgbench_best_concurrency']}), p99 {t['p99_ms']:.1f} ms (target >= {SINGLE_RATIO_TARGET} x "
        f"and p99 <= {P99_TARGET_MS:.0f} ms: {'met' if t['met'] else 'not met'})"
        for workload, t in targets["single_ratio"].items()
    ]
    bulk, rss = targets["bulk_postings_per_s"], targets["api_rss_mb"]
    lines.append(f"bulk: {bulk['value']:,.0f} postings/s (target >= {BULK_POSTINGS_TARGET:,}: "
                 f"{'met' if bulk['met'] else 'not met'})")
    lines.append(f"API peak RSS over the whole run: {rss['value']:.0f} MB (target <= {RSS_TARGET_MB:.0f} MB: "
                 f"{'met' if rss['met'] else 'not met'})")
    return lines


LEGEND = (
    "entries/s: journal entries applied per second (a credit or a gift is one entry of two postings; a bulk "
    "request applies one per item). x pgbench best: entries/s over pgbench's best transactions/s. Cores: "
    "1.00 = one core busy for the whole run; client = this Python process (httpx), API = the `alliance serve` "
    "process, PG = the PostgreSQL processes. CPU ms/entry: CPU time per applied entry."
)


def report(results: dict) -> Report:
    return Report("HTTP API vs pgbench", HEADERS, result_rows(results), LEGEND, verdict_lines(results))


# --- command line -----------------------------------------------------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=int, default=10, help="duration of each measured run (default 10)")
    parser.add_argument("--concurrency", type=int, default=64, help="HTTP requests in flight (default 64)")


def add_pgbench_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pgbench-concurrency", default="8,64",
        type=lambda text: [int(c) for c in text.split(",") if c.strip()],
        help="pgbench client counts; the best one is the baseline (default 8,64)",
    )  # fmt: skip


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__.split("\n\n")[0])
    add_run_arguments(parser)
    parser.add_argument("--members", type=int, default=10_000, help="members of the brand (default 10000)")
    parser.add_argument("--batch", type=int, default=1000, help="credits per bulk request (default 1000)")
    add_pgbench_argument(parser)
    return parse_with(parser, argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with fresh_services() as (server_url, redis_url):
        results = asyncio.run(benchmark(server_url, redis_url, args))
    publish(results, report(results))


if __name__ == "__main__":
    main()
