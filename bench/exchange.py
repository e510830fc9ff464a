"""Cross-brand conversions through the HTTP API vs pgbench, on one PostgreSQL, in one run.

    uv run python -m bench.exchange [--seconds 10] [--concurrency 64] [--persons 1000] [--pgbench-concurrency 8,64]

1. The services and the API as bench.http has them: ALLIANCE_DATABASE_URL / ALLIANCE_REDIS_URL if set, else
   embedded ones under .alliance/bench; a fresh, migrated database `alliance_bench`; `alliance serve` in a
   subprocess with production settings and a rate limit too high to matter.
2. The alliance, set up through the API: 10 brands with different point values, each admitted to the exchange
   with a net debit cap it never reaches; all 90 directed pairs open, each with a rate card (rate derived from
   the point values, 50 bps fee, no daily limits); a signing key per brand; N persons, each a member of all 10
   brands with the memberships linked under one alliance identity, every membership funded through the bulk
   endpoint so that no conversion runs out of points.
3. Two workloads, each for a fixed time, by a keep-alive aiohttp client with that many requests in flight. Every
   request is a `POST /v1/conversions` (convert at once: both legs committed) of 10..100 points of a random
   person, to the same person's membership at another brand, signed afresh by the load generator with the
   source brand's Ed25519 key, under a unique idempotency key. **uniform**: the source brand is uniform over
   the 10, the target over the other 9. **skewed**: the source is brand 0 with probability 0.7, else uniform
   over the others; the target is uniform over the brands other than the source.
4. pgbench's two-account transfer transaction (bench.ledger's) on the same server and database.
5. A table, the verdicts (uniform >= 0.4 x pgbench's best; skewed >= 0.7 x uniform), JSON results in
   bench/out/ and a Markdown snippet for bench/RESULTS.md.
6. A consistency check: each brand's ledger sums to zero, and as many conversions are committed as were
   answered 201. The command exits with 1 when it fails.

The load generator (which signs every request), the API and PostgreSQL share the machine's cores; the CPU
columns say who took what.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

import aiohttp
import asyncpg
import httpx
from alliance_sdk.signing import SIGNATURE_HEADER, generate_signing_key, sign_request
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from rich.progress import Progress

from bench.common import (
    BENCH_DATABASE,
    Load,
    Report,
    console,
    count_progress,
    cpu_ms,
    document_head,
    fresh_services,
    parse_with,
    publish,
    run_progress,
    with_database,
)
from bench.http import (
    KEEPALIVE_EXPIRY,
    REQUEST_TIMEOUT,
    Answer,
    HttpRun,
    Send,
    add_pgbench_argument,
    add_run_arguments,
    api_client,
    bearer,
    create_operator_key,
    create_tenant,
    expect,
    fund_members,
    run_pgbench_baseline,
    run_workloads,
    running_api,
)
from bench.ledger import PgbenchRun, measuring_connection

# Brand i's point value (CNY): the pairs convert at many rates, from x8 (0.20 -> 0.025) down to x0.125. No lower:
# the smallest conversion, 10 points less the 1-point fee, must still buy a target point (else amount_too_small).
POINT_VALUES = ("0.025", "0.03", "0.04", "0.05", "0.06", "0.08", "0.10", "0.12", "0.15", "0.20")
BRANDS = len(POINT_VALUES)
NET_DEBIT_CAP = "1000000000000"  # the largest cap the exchange takes: no run comes near it
FEE_BPS = 50
MAX_AMOUNT = 1_000_000_000_000  # no per-conversion maximum to speak of; and no daily limits
AMOUNTS = (10, 100)  # source points per conversion, uniform
SKEWED_SHARE = 0.7  # of the skewed workload's conversions, those from brand 0
UNIFORM_RATIO_TARGET = 0.4  # uniform conversions/s over pgbench's best transactions/s
SKEWED_RATIO_TARGET = 0.7  # skewed conversions/s over uniform conversions/s
ENTRIES_PER_CONVERSION = 2  # one in each brand's ledger, of two postings each
FUNDING_BATCH = 1000  # credits per bulk request (the endpoint's maximum)
# Set-up requests in flight. The API is the bottleneck of the set-up from about 8 on; beyond 16, httpx's pool
# costs the client more CPU per request than it gains (it polls every idle connection for each request), and on
# a 2-core machine that CPU comes out of the API's.
SETUP_CONCURRENCY = 16
KID = "bench-1"
CONVERSIONS = "/v1/conversions"

T = TypeVar("T")
U = TypeVar("U")


# --- the alliance -----------------------------------------------------------------------------------------


@dataclass
class Brand:
    index: int
    id: int
    code: str
    api: dict[str, str]  # the headers of its API key
    signing_key: Ed25519PrivateKey  # loaded once: signing needs no PEM parsing per request


async def onboard(client: httpx.AsyncClient, operator: dict[str, str], index: int) -> Brand:
    """Brand `index`: created, admitted to the exchange, its signing key registered."""
    tenant_id, api = await create_tenant(client, operator, {
        "code": f"bench-b{index}", "name": f"Bench Brand {index}", "currency_code": f"BENCH{index}",
        "point_value": POINT_VALUES[index]})  # fmt: skip
    expect(await client.post("/v1/admin/exchange/participants", headers=operator,
                             json={"tenant_id": tenant_id, "net_debit_cap": NET_DEBIT_CAP}), 201)
    private_pem, public_jwk = generate_signing_key()
    expect(await client.post("/v1/signing-keys", headers=api, json={"kid": KID, "public_jwk": public_jwk}), 201)
    signing_key = load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(signing_key, Ed25519PrivateKey):
        raise TypeError("generate_signing_key() made a key that is not Ed25519")
    return Brand(index=index, id=tenant_id, code=f"bench-b{index}", api=api, signing_key=signing_key)


async def open_pair(client: httpx.AsyncClient, operator: dict[str, str], pair: tuple[Brand, Brand]) -> None:
    """source -> target opened, with a rate card: the rate derived from the point values."""
    ids = {"source_tenant_id": pair[0].id, "target_tenant_id": pair[1].id}
    expect(await client.post("/v1/admin/exchange/pairs", headers=operator, json=ids), 201)
    expect(await client.post("/v1/admin/exchange/rate-cards", headers=operator,
                             json=ids | {"fee_bps": FEE_BPS, "max_amount": MAX_AMOUNT}), 201)


async def enrol(client: httpx.AsyncClient, brands: list[Brand], person: str) -> None:
    """One person: a member of every brand, the memberships linked under one alliance identity (codes issued
    for the member at brand 0, redeemed at each other brand)."""
    for brand in brands:
        expect(await client.post("/v1/members", headers=brand.api, json={"external_id": person}), 201)
    for brand in brands[1:]:
        code = expect(await client.post(f"/v1/members/{person}/link-codes", headers=brands[0].api), 201)["code"]
        expect(await client.post("/v1/alliance-links", headers=brand.api, json={"code": code, "member": person}), 201)


async def each(
    progress: Progress, label: str, items: Sequence[T], work: Callable[[T], Awaitable[U]], concurrency: int
) -> list[U]:
    """work(item) for every item, `concurrency` at a time, with a progress bar; the results in order."""
    task = progress.add_task(label, total=len(items))
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> U:
        async with gate:
            result = await work(item)
        progress.advance(task)
        return result

    return await asyncio.gather(*(one(item) for item in items))


async def set_up_alliance(client: httpx.AsyncClient, operator: dict[str, str], persons: list[str]) -> list[Brand]:
    """The brands, their pairs and rate cards, the persons, linked and funded: all through the API."""
    with count_progress("{task.description:<34}") as progress:
        brands = await each(progress, "brands, caps, signing keys", range(BRANDS),
                            lambda i: onboard(client, operator, i), SETUP_CONCURRENCY)
        pairs = [(source, target) for source in brands for target in brands if source is not target]
        await each(progress, "pairs and rate cards", pairs, lambda pair: open_pair(client, operator, pair),
                   SETUP_CONCURRENCY)
        await each(progress, f"persons: {BRANDS} memberships, linked", persons,
                   lambda person: enrol(client, brands, person), SETUP_CONCURRENCY)
        await each(progress, "funding, through the bulk endpoint", brands,
                   lambda brand: fund_members(client, brand.api, persons, FUNDING_BATCH), SETUP_CONCURRENCY)
    return brands


# --- the workloads ----------------------------------------------------------------------------------------


def problem_code(body: bytes) -> str:
    try:
        problem = json.loads(body)
    except ValueError:
        problem = None
    code = problem.get("code") if isinstance(problem, dict) else None
    return code if isinstance(code, str) else "(no problem code)"


def load_client(api, concurrency: int) -> aiohttp.ClientSession:
    """The measured runs' client: aiohttp, whose C parser and connection pool cost a fraction of httpx's CPU per
    request (at 64 connections httpx's pool took about 6 ms of the load generator's CPU per conversion, on the
    same 2 cores as the API and PostgreSQL)."""
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=KEEPALIVE_EXPIRY)
    return aiohttp.ClientSession(base_url=api.url, connector=connector,
                                 timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))


def conversions(brands: list[Brand], persons: list[str], source_brand: Callable[[], Brand]) -> Send:
    """Conversions of a random person's points from source_brand() to another brand, each signed afresh."""
    targets = {brand.index: [b for b in brands if b is not brand] for brand in brands}

    async def send(session: aiohttp.ClientSession, key: str) -> Answer:
        source = source_brand()
        body = json.dumps({"member": random.choice(persons), "to_brand": random.choice(targets[source.index]).code,
                           "amount": random.randint(*AMOUNTS)}, separators=(",", ":")).encode()
        signature = sign_request(source.signing_key, kid=KID, tenant=source.id, method="POST", path=CONVERSIONS,
                                 body=body)
        async with session.post(CONVERSIONS, data=body, headers=source.api | {
                "content-type": "application/json", "idempotency-key": key, SIGNATURE_HEADER: signature}) as response:
            answer = await response.read()
            if response.status == 201:
                return Answer(201, ENTRIES_PER_CONVERSION)
            return Answer(response.status, 0, problem_code(answer))  # a 2xx other than 201 counts as an error

    return send


def uniform_source(brands: list[Brand]) -> Callable[[], Brand]:
    return lambda: random.choice(brands)


def skewed_source(brands: list[Brand]) -> Callable[[], Brand]:
    others = brands[1:]
    return lambda: brands[0] if random.random() < SKEWED_SHARE else random.choice(others)


# --- consistency ------------------------------------------------------------------------------------------


async def check_consistency(admin: asyncpg.Connection, brands: list[Brand], runs: list[HttpRun]) -> dict:
    """Each brand's ledger sums to zero; the committed conversions are exactly the 201s counted."""
    codes = {brand.id: brand.code for brand in brands}
    sums = {codes.get(row["tenant_id"], str(row["tenant_id"])): int(row["total"]) for row in await admin.fetch(
        "SELECT tenant_id, sum(balance) AS total FROM ledger_accounts GROUP BY tenant_id ORDER BY tenant_id")}
    committed = await admin.fetchval("SELECT count(*) FROM exchange_conversions WHERE status = 'committed'")
    answered = sum(run.requests for run in runs)
    unbalanced = {code: total for code, total in sums.items() if total != 0}
    return {"ledger_sums": sums, "unbalanced": unbalanced, "committed": committed, "answered_201": answered,
            "ok": not unbalanced and len(sums) == len(brands) and committed == answered}


# --- running it all ---------------------------------------------------------------------------------------


async def benchmark(server_url: str, redis_url: str, args: argparse.Namespace) -> dict:
    url = with_database(server_url, BENCH_DATABASE)
    persons = [f"p{n:06d}" for n in range(args.persons)]
    async with running_api(url, redis_url) as api:
        with console.status("starting the API"):
            await api.wait_ready()
            operator = bearer(await create_operator_key(url))
        started = time.perf_counter()
        async with api_client(api, SETUP_CONCURRENCY) as client:
            brands = await set_up_alliance(client, operator, persons)
        setup_seconds = time.perf_counter() - started
        console.print(f"set-up through the API: {BRANDS} brands, {BRANDS * (BRANDS - 1)} pairs, {args.persons:,} "
                      f"persons x {BRANDS} memberships linked and funded, in {setup_seconds:.1f} s")
        with console.status("creating the pgbench tables, VACUUM ANALYZE"):
            admin, facts, meter = await measuring_connection(url, args.persons * BRANDS)
        workloads = [
            ("uniform", conversions(brands, persons, uniform_source(brands))),
            (f"skewed ({SKEWED_SHARE:.0%} from b0)", conversions(brands, persons, skewed_source(brands))),
        ]
        async with load_client(api, args.concurrency) as client:
            with run_progress() as progress:
                http_runs = await run_workloads(progress, workloads, client, api, admin, meter, args.concurrency,
                                                args.seconds)
                pgbench_runs = await run_pgbench_baseline(progress, url, admin, meter, args.pgbench_concurrency,
                                                          args.seconds, args.persons * BRANDS)
        consistency = await check_consistency(admin, brands, http_runs)
        await admin.close()
    return results_document(args, facts, setup_seconds, http_runs, pgbench_runs, max(api.rss_samples, default=0),
                            consistency)


def results_document(
    args: argparse.Namespace, server: dict[str, str], setup_seconds: float, http_runs: list[HttpRun],
    pgbench_runs: list[PgbenchRun], peak_rss: int, consistency: dict,
) -> dict:  # fmt: skip
    uniform, skewed = http_runs
    best_pgbench = max(pgbench_runs, key=lambda r: r.tps)
    uniform_ratio = uniform.rps / best_pgbench.tps
    skewed_ratio = skewed.rps / uniform.rps if uniform.rps else 0.0
    settings = {"seconds": args.seconds, "concurrency": args.concurrency, "persons": args.persons,
                "setup_concurrency": SETUP_CONCURRENCY, "brands": BRANDS, "point_values": POINT_VALUES, "fee_bps": FEE_BPS, "amounts": AMOUNTS,
                "skewed_share": SKEWED_SHARE, "pgbench_concurrency": args.pgbench_concurrency}
    return {
        **document_head("exchange", args, settings, server),
        "setup_seconds": setup_seconds,
        "http": [asdict(r) for r in http_runs],
        "pgbench": [asdict(r) for r in pgbench_runs],
        "peak_rss_mb": peak_rss / 2**20,
        "consistency": consistency,
        "targets": {
            "pgbench_best_tps": best_pgbench.tps,
            "pgbench_best_concurrency": best_pgbench.concurrency,
            "uniform_vs_pgbench": {"ratio": uniform_ratio, "target": UNIFORM_RATIO_TARGET,
                                   "met": uniform_ratio >= UNIFORM_RATIO_TARGET},
            "skewed_vs_uniform": {"ratio": skewed_ratio, "target": SKEWED_RATIO_TARGET,
                                  "met": skewed_ratio >= SKEWED_RATIO_TARGET},
        },
    }  # fmt: skip


# --- reporting --------------------------------------------------------------------------------------------

HEADERS = [
    "workload", "clients", "conversions/s", "p50 ms", "p99 ms", "errors", "x pgbench best",
    "cores client / API / PG", "PG CPU ms/conv", "API CPU ms/conv", "client CPU ms/conv", "peak API RSS MB",
]  # fmt: skip


def conversion_row(run: dict, pgbench_best_tps: float) -> list[str]:
    load = Load(**run["load"])
    return [
        run["workload"], str(run["concurrency"]), f"{run['rps']:,.0f}", f"{run['p50_ms']:.1f}",
        f"{run['p99_ms']:.1f}", ", ".join(f"{n} x {error}" for error, n in run["errors"].items()) or "0",
        f"{run['rps'] / pgbench_best_tps:.2f}",
        f"{load.client_cores:.2f} / {run['api_cores']:.2f} / {load.server_cores or 0:.2f}",
        cpu_ms(load.server_cores, run, "requests"), cpu_ms(run["api_cores"], run, "requests"),
        cpu_ms(load.client_cores, run, "requests"), f"{run['peak_rss_mb']:.0f}",
    ]  # fmt: skip


def pgbench_row(run: dict) -> list[str]:
    load = Load(**run["load"])
    return [
        "pgbench transfer transaction", str(run["concurrency"]), f"{run['tps']:,.0f}", "",
        f"(avg {run['latency_avg_ms']:.1f})", str(run["failed"]), "",
        f"{load.client_cores:.2f} / - / {load.server_cores or 0:.2f}",
        cpu_ms(load.server_cores, run, "transactions"), "", cpu_ms(load.client_cores, run, "transactions"), "",
    ]  # fmt: skip


def verdict_lines(results: dict) -> list[str]:
    targets, consistency = results["targets"], results["consistency"]
    uniform, skewed = targets["uniform_vs_pgbench"], targets["skewed_vs_uniform"]
    lines = [
        f"uniform: {uniform['ratio']:.2f} x pgbench's best ({targets['pgbench_best_tps']:,.0f} tps at "
        f"x{targets['pgbench_best_concurrency']}) (target >= {UNIFORM_RATIO_TARGET}: "
        f"{'met' if uniform['met'] else 'not met'})",
        f"skewed: {skewed['ratio']:.2f} x uniform (target >= {SKEWED_RATIO_TARGET}: "
        f"{'met' if skewed['met'] else 'not met'})",
    ]
    for run in results["http"]:
        load = Load(**run["load"])
        lines.append(f"load generator, {run['workload']}: {load.client_cores:.2f} of the machine's "
                     f"{results['machine']['cpus']} cores, "
                     f"{cpu_ms(load.client_cores, run, 'requests')} ms CPU per conversion (signing, JSON and HTTP)")
    others = max(Load(**run["load"]).other_cores for run in results["http"] + results["pgbench"])
    lines.append(f"other programs used up to {others:.2f} cores during the runs")
    lines.append(f"API peak RSS over the whole run: {results['peak_rss_mb']:.0f} MB")
    lines.append(f"set-up through the API: {results['setup_seconds']:.1f} s")
    if consistency["ok"]:
        lines.append(f"consistency: each brand's ledger sums to 0; {consistency['committed']:,} conversions "
                     "committed, as many as answered 201")
    else:
        lines.append(f"consistency FAILED: ledger sums {consistency['ledger_sums']}; {consistency['committed']:,} "
                     f"conversions committed, {consistency['answered_201']:,} answered 201")
    return lines


LEGEND = (
    "conversions/s: 201 answers per second (each conversion commits two journal entries, one in each brand's "
    "ledger). x pgbench best: conversions/s over pgbench's best transactions/s (one two-account transfer). Cores: "
    "1.00 = one core busy for the whole run; client = this Python process (signing each request with Ed25519, "
    "aiohttp), or pgbench; API = the `alliance serve` process; PG = the PostgreSQL processes. CPU ms/conv: CPU time "
    "per conversion (for pgbench, per transaction)."
)


def report(results: dict) -> Report:
    best = results["targets"]["pgbench_best_tps"]
    rows = [conversion_row(r, best) for r in results["http"]] + [pgbench_row(r) for r in results["pgbench"]]
    return Report("Cross-brand conversions through the HTTP API vs pgbench", HEADERS, rows, LEGEND,
                  verdict_lines(results))


# --- command line -----------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.exchange", description=__doc__.split("\n\n")[0])
    add_run_arguments(parser)
    parser.add_argument("--persons", type=int, default=1000,
                        help=f"persons, each a member of all {BRANDS} brands (default 1000)")
    add_pgbench_argument(parser)
    return parse_with(parser, argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with fresh_services() as (server_url, redis_url):
        results = asyncio.run(benchmark(server_url, redis_url, args))
    publish(results, report(results))
    if not results["consistency"]["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
