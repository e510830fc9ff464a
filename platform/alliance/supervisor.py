"""`alliance up`: the whole platform from one terminal. Starts (or reuses) the backing services, migrates,
runs the API, a worker and the scheduler as children, says where everything is, and on Ctrl-C (or when
any child dies) stops them all, children first, then the servers it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.table import Table

from alliance.db.migrate import upgrade
from alliance.processes import kill_tree, spawn_child
from alliance.settings import Settings

console = Console(stderr=True)


@dataclass
class Child:
    name: str
    process: subprocess.Popen


def _start_children(settings: Settings, env: dict[str, str]) -> list[Child]:
    command = [sys.executable, "-m", "alliance"]
    roles = {
        "api": [*command, "serve", "--host", settings.host, "--port", str(settings.port)],
        "scheduler": [*command, "scheduler"],
        "worker": [*command, "worker", "--processes", "1"],
    }
    return [Child(name, spawn_child(argv, death_signal=signal.SIGTERM, env=env)) for name, argv in roles.items()]


def _wait_for_api(base_url: str, children: list[Child], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if child.process.poll() is not None:
                raise SystemExit(f"the {child.name} exited during start (code {child.process.returncode})")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the API did not become ready at {base_url} within {timeout:.0f} s")


def _stop(children: list[Child]) -> None:
    # API first (no new work), then the scheduler (no new jobs), then the worker (finishes its jobs).
    for child in children:
        if child.process.poll() is None:
            console.print(f"stopping {child.name} …")
            kill_tree(child.process.pid, signal.SIGTERM, timeout=15)
            child.process.wait()


def run_platform(settings: Settings) -> int:
    from alliance.resources import resolve_backing_services

    with console.status("Starting PostgreSQL and Redis …"):
        services = resolve_backing_services(settings)
    with console.status("Migrating the database …"):
        upgrade(services.database_url)
    env = os.environ | {"ALLIANCE_DATABASE_URL": services.database_url, "ALLIANCE_REDIS_URL": services.redis_url}
    children = _start_children(settings, env)
    stop_requested = False

    def request_stop(*_: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    base_url = f"http://{settings.host}:{settings.port}"
    try:
        with console.status("Starting the API, a worker and the scheduler …"):
            _wait_for_api(base_url, children)
        _announce(base_url, services, settings)
        _run_demo(base_url, settings)
        while not stop_requested:
            dead = [c for c in children if c.process.poll() is not None]
            if dead:
                console.print(f"[red]the {dead[0].name} exited (code {dead[0].process.returncode}); stopping[/red]")
                return 1
            time.sleep(0.3)
        return 0
    finally:
        _stop(children)
        console.print("stopped.")


def _run_demo(base_url: str, settings: Settings) -> None:
    from alliance import demo
    from alliance.auth import service as keys
    from alliance.auth.keys import KeyKind
    from alliance.db.oneshot import run_db

    def issue_operator_key() -> str:
        _, issued = run_db(lambda s: keys.create_key(s, kind=KeyKind.OPERATOR, name="demo", tenant_id=None))
        return issued.secret

    try:
        with console.status("Seeding the demo alliance through the SDK …"):
            state = demo.seed(base_url, settings.data_dir / "demo.json", issue_operator_key)
    except demo.OutdatedDemo as outdated:
        console.print(f"[yellow]no demo scenario: {outdated}[/yellow]")
        return
    console.rule("Demo: a coffee chain, an airline and a supermarket")
    demo.tell_scenario(base_url, state, lambda line: console.print("  " + line, soft_wrap=True))
    console.rule()


def _announce(base_url: str, services, settings: Settings) -> None:
    table = Table(title="Alliance is running", show_header=False, title_justify="left")
    table.add_row("API", base_url + "/v1")
    table.add_row("OpenAPI", base_url + "/docs")
    table.add_row("Health", f"{base_url}/healthz  ·  {base_url}/readyz")
    table.add_row("PostgreSQL", services.database_url + ("  (embedded)" if services.embedded else ""))
    table.add_row("Redis", services.redis_url)
    table.add_row("Data folder", str(settings.data_dir.resolve()))
    console.print(table)
    console.print("Ctrl-C stops everything.")
