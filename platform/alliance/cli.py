"""The `alliance` command: run the platform's processes and operate it."""

from __future__ import annotations

import os
import sys

import click

from alliance.settings import get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Alliance: a multi-tenant brand-alliance points exchange."""


@main.command()
def up() -> None:
    """Quick start: services (embedded unless configured), migrations, API, worker and scheduler."""
    from alliance.supervisor import run_platform

    sys.exit(run_platform(get_settings()))


@main.command()
@click.option("--host", default=None, help="Interface to bind (ALLIANCE_HOST).")
@click.option("--port", type=int, default=None, help="Port to bind (ALLIANCE_PORT).")
@click.option("--workers", type=int, default=1, show_default=True, help="API processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the API (refuses to start while migrations are pending)."""
    import uvicorn

    settings = get_settings()
    _export_backing_services()
    uvicorn.run(
        "alliance.app:create_app", factory=True, host=host or settings.host, port=port or settings.port,
        workers=workers, log_config=None, access_log=False, server_header=False,
        # Stopping waits this long for requests in flight, then closes their connections: never indefinitely
        # (an unbounded wait let the API outlive a killed supervisor).
        timeout_graceful_shutdown=API_SHUTDOWN_SECONDS,
    )


# How long requests in flight get to finish when the API stops.
API_SHUTDOWN_SECONDS = 5


@main.command()
@click.option("--processes", type=int, default=2, show_default=True)
@click.option("--threads", type=int, default=8, show_default=True)
def worker(processes: int, threads: int) -> None:
    """Run dramatiq workers for every task of the platform."""
    import signal
    import threading

    from alliance.processes import kill_tree, spawn_child

    _export_backing_services()
    # A child, not exec: this process may own the embedded servers, and exec would drop their lock.
    # On SIGTERM dramatiq finishes its running jobs, within a bound; whatever is still alive after it (a
    # worker process caught booting, a stuck job) is killed with its whole tree. Unfinished jobs are
    # redelivered, and every task runs in a transaction.
    command = [sys.executable, "-m", "dramatiq", "alliance.worker.registry:configure_worker",
               "--processes", str(processes), "--threads", str(threads),
               "--worker-shutdown-timeout", str(WORKER_SHUTDOWN_SECONDS * 1000)]
    dramatiq = spawn_child(command, death_signal=signal.SIGTERM)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while dramatiq.poll() is None:
        if stop.wait(0.2):
            kill_tree(dramatiq.pid, signal.SIGTERM, timeout=WORKER_SHUTDOWN_SECONDS + 2)
            break
    sys.exit(dramatiq.wait())


# How long running jobs get to finish when the worker stops.
WORKER_SHUTDOWN_SECONDS = 8


@main.command()
def scheduler() -> None:
    """Run the scheduler of periodic jobs (several may run: one leads at a time)."""
    import asyncio
    import signal

    from alliance.app import domain_schedules
    from alliance.worker.registry import TASK_MODULES
    from alliance.worker.scheduler import DEFAULT_SCHEDULES, Scheduler
    from alliance.worker.tasks import declare_tasks

    _export_backing_services()

    async def run() -> None:
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        scheduler = Scheduler(get_settings().redis_url, [*DEFAULT_SCHEDULES, *domain_schedules()])
        declare_tasks(TASK_MODULES)
        await scheduler.run(stop)

    asyncio.run(run())


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (starts the embedded PostgreSQL when none is configured)."""
    from alliance.db.migrate import upgrade
    from alliance.resources import resolve_backing_services

    upgrade(resolve_backing_services().database_url)
    click.echo("database is up to date")


@main.group()
def admin() -> None:
    """Operator access."""


@admin.command("create-key")
@click.option("--name", required=True, help="Who or what the key is for.")
def admin_create_key(name: str) -> None:
    """Issue an operator API key; the secret is printed once and stored only as a hash."""
    from alliance.auth import service as keys
    from alliance.auth.keys import KeyKind
    from alliance.db.oneshot import run_db

    key, issued = run_db(lambda s: keys.create_key(s, kind=KeyKind.OPERATOR, name=name, tenant_id=None))
    click.echo(f"operator key {key.key_id} ({name}); keep it secret, it is shown only now:")
    click.echo(issued.secret)


def _register_domain_commands() -> None:
    # The domains' command groups, assembled by the composition root like their routers.
    from alliance.app import DOMAIN_COMMANDS

    for group in DOMAIN_COMMANDS:
        main.add_command(group)


_register_domain_commands()


def _export_backing_services() -> None:
    """Resolve the services (embedded unless configured) once, here, so every child process inherits
    the same URLs instead of each starting its own."""
    from alliance.resources import resolve_backing_services

    services = resolve_backing_services()
    os.environ["ALLIANCE_DATABASE_URL"] = services.database_url
    os.environ["ALLIANCE_REDIS_URL"] = services.redis_url
    get_settings.cache_clear()
