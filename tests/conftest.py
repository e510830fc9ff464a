"""Test fixtures on a real PostgreSQL and a real Redis.

The services are those named by ALLIANCE_DATABASE_URL / ALLIANCE_REDIS_URL, else embedded ones started
once by the controlling pytest process under .alliance/test (workers inherit the URLs). Each xdist
worker gets its own database, migrated to head, and its own Redis database number.

Two ways to touch the database:
- `conn`: one asyncpg connection inside a transaction that is rolled back after the test. Before rolling
  back it runs SET CONSTRAINTS ALL IMMEDIATE, so every deferred ledger check (balanced entries) fires on
  what the test wrote.
- `pool` / `db`: real commits, for concurrency tests. Such tests use a fresh `tenant_id`, so their
  committed rows never meet another test's.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from alliance.app import create_app
from alliance.auth import service as keys
from alliance.auth.keys import KeyKind
from alliance.db import Database, asyncpg_dsn, run_in_transaction
from alliance.db.migrate import upgrade
from tests.api import bearer

ROOT = Path(__file__).resolve().parents[1]
pytest_plugins = ["tests.exchange_fixtures"]
_embedded = None


def pytest_configure(config: pytest.Config) -> None:
    global _embedded
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller has set the URLs in the environment it inherited
    # Names this run's databases, so two runs on one server never drop each other's.
    os.environ.setdefault("ALLIANCE_TEST_RUN", os.urandom(4).hex())
    if os.environ.get("ALLIANCE_DATABASE_URL") and os.environ.get("ALLIANCE_REDIS_URL"):
        return
    from alliance.embedded import EmbeddedServices

    _embedded = EmbeddedServices(
        ROOT / ".alliance" / "test",
        postgres=not os.environ.get("ALLIANCE_DATABASE_URL"),
        redis=not os.environ.get("ALLIANCE_REDIS_URL"),
    ).start()
    os.environ.setdefault("ALLIANCE_DATABASE_URL", _embedded.database_url)
    os.environ.setdefault("ALLIANCE_REDIS_URL", _embedded.redis_url)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _embedded is not None:
        _embedded.stop()


def _worker_number(worker_id: str) -> int:
    return 0 if worker_id == "master" else int(worker_id.removeprefix("gw")) + 1


def _admin(statement: str) -> None:
    server = make_url(os.environ["ALLIANCE_DATABASE_URL"]).set(database="postgres")

    async def run() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(server.render_as_string(hide_password=False)))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def database_url(worker_id: str) -> Iterator[str]:
    """A database of this run and worker, migrated to head, dropped at the end."""
    name = f"alliance_test_{os.environ['ALLIANCE_TEST_RUN']}_{_worker_number(worker_id)}"
    _admin(f'CREATE DATABASE "{name}"')
    url = make_url(os.environ["ALLIANCE_DATABASE_URL"]).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url(worker_id: str) -> str:
    base = make_url(os.environ["ALLIANCE_REDIS_URL"])
    return base.set(database=str(_worker_number(worker_id) % 16)).render_as_string(hide_password=False)


@pytest.fixture(scope="session", autouse=True)
def broker(redis_url: str):
    """Jobs enqueued by any code under test go to this worker's Redis database."""
    from alliance.worker.broker import configure_broker

    return configure_broker(redis_url)


SERVER_SETTINGS = {"TimeZone": "UTC", "application_name": "alliance-tests"}


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(
        asyncpg_dsn(database_url), min_size=2, max_size=60, server_settings=SERVER_SETTINGS
    )
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.connect(database_url, pool_size=10, application_name="alliance-tests")
    yield database
    await database.dispose()


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            yield connection
            await connection.execute("SET CONSTRAINTS ALL IMMEDIATE")
        finally:
            await transaction.rollback()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


# Each worker's database is fresh, so a counter keeps committing tests' rows apart; far above the ids of the
# brands that API tests onboard (identity ids from 1), so the two never meet.
_tenant_ids = itertools.count(10**12)


@pytest.fixture
def tenant_id() -> int:
    return next(_tenant_ids)


# --- the HTTP API: an app on this worker's database, an operator key, brands onboarded over HTTP ---------


@pytest.fixture(scope="session")
async def operator_key(db) -> str:
    _, issued = await run_in_transaction(
        db.sessions, lambda s: keys.create_key(s, kind=KeyKind.OPERATOR, name="tests", tenant_id=None)
    )
    return issued.secret


@pytest.fixture
async def client(database_url, redis_url, redis, tmp_path, monkeypatch):
    monkeypatch.setenv("ALLIANCE_DATA_DIR", str(tmp_path))
    from alliance.settings import get_settings

    get_settings.cache_clear()
    app = create_app(database_url=database_url, redis_url=redis_url)
    async with AsyncTestClient(app) as client:
        yield client
    get_settings.cache_clear()


@pytest.fixture
def onboard(client, operator_key):
    """Admits a brand and returns (tenant, headers of a brand key)."""

    async def admit(**overrides) -> tuple[dict, dict[str, str]]:
        body = {"code": f"brand-{os.urandom(4).hex()}", "name": "Coffee Chain", "currency_code": "BEANS",
                "point_value": "0.10", **overrides}
        tenant = await client.post("/v1/admin/tenants", json=body, headers=bearer(operator_key))
        assert tenant.status_code == 201, tenant.text
        key = await client.post(f"/v1/admin/tenants/{tenant.json()['id']}/keys", json={"name": "backend"},
                                headers=bearer(operator_key))
        assert key.status_code == 201, key.text
        return tenant.json(), bearer(key.json()["secret"])

    return admit


@pytest.fixture
def relay(db):
    """Relays every pending outbox event, as the worker would (fanning webhook events out into deliveries)."""
    from alliance.worker.outbox import relay_outbox

    async def run() -> int:
        return await run_in_transaction(db.sessions, relay_outbox)

    return run


# --- the operator CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli(database_url, redis_url, monkeypatch):
    """Runs `alliance …` on this worker's database; returns click's result."""
    from click.testing import CliRunner

    from alliance.cli import main
    from alliance.settings import get_settings

    monkeypatch.setenv("ALLIANCE_DATABASE_URL", database_url)
    monkeypatch.setenv("ALLIANCE_REDIS_URL", redis_url)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(main, list(args), catch_exceptions=False)
    get_settings.cache_clear()


@pytest.fixture
def wide_terminal(monkeypatch):
    """For CLI tests of wide tables: at the default 80 columns rich would wrap the cells asserted on. An xdist
    worker starts with COLUMNS=80, which the console pinned when it was made: unpinned, it follows COLUMNS again."""
    from tenants.cli import console

    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setattr(console, "_width", None)
