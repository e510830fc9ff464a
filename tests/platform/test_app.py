"""The API's skeleton: probes, OpenAPI, problem+json for every error, request ids, migration guard."""

import asyncio

import asyncpg
import msgspec
import pytest
from litestar import get, post
from litestar.params import FromPath, JSONBody
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from alliance.app import PendingMigrationsError, create_app
from alliance.db import asyncpg_dsn, run_in_transaction
from alliance.ledger import LedgerRejected, Rejection


class Greeting(msgspec.Struct):
    name: str
    times: int


@post("/test/greet")
async def greet(data: JSONBody[Greeting]) -> dict:
    return {"hello": data.name * data.times}


@get("/test/refused/{code:str}")
async def refused(code: FromPath[str]) -> None:
    # A rejection whose detail uses a name the problem document reserves must still read cleanly.
    raise LedgerRejected(Rejection(code), {"hold_id": 7, "hold_status": "posted", "status": "evil", "title": "x"})


@get("/test/boom")
async def boom() -> None:
    raise RuntimeError("secret internals /etc/passwd")


@pytest.fixture
async def client(database_url, redis_url):
    app = create_app(database_url=database_url, redis_url=redis_url)
    app.register(greet)
    app.register(boom)
    app.register(refused)
    async with AsyncTestClient(app) as client:
        yield client


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["type"].endswith(code)
    return body


async def test_probes(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}


async def test_readyz_reports_an_unreachable_redis(database_url):
    app = create_app(database_url=database_url, redis_url="redis://127.0.0.1:1/0")
    async with AsyncTestClient(app) as client:
        body = assert_problem(await client.get("/readyz"), 503, "not_ready")
    assert body["checks"] == {"postgres": "ok", "redis": "unreachable"}


async def test_openapi_is_served_with_a_browsable_page(client):
    schema = await client.get("/docs/openapi.json")
    assert schema.status_code == 200 and "/readyz" in schema.json()["paths"]
    page = await client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


async def test_unknown_route_and_wrong_method_are_problems(client):
    assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(await client.delete("/healthz"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{", 400, "bad_request"),
        (b"\xff\xfe", 400, "bad_request"),
        (b"[]", 422, "validation_error"),
        (b'{"name": "x"}', 422, "validation_error"),
        (b'{"name": 1, "times": 2}', 422, "validation_error"),
    ],
)
async def test_invalid_bodies_are_problems(client, body, status, code):
    response = await client.post("/test/greet", content=body, headers={"content-type": "application/json"})
    assert_problem(response, status, code)


async def test_unexpected_errors_leak_nothing(client):
    response = await client.get("/test/boom")
    body = assert_problem(response, 500, "internal_error")
    assert "secret" not in response.text and "Traceback" not in response.text and "passwd" not in response.text
    assert body["title"] == "Internal error"


async def test_request_id_is_echoed_or_made(client):
    supplied = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert supplied.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"x-request-id": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 32


async def test_api_refuses_to_start_on_a_database_with_pending_migrations(database_url, redis_url):
    blank = make_url(database_url).set(database=make_url(database_url).database + "_blank")
    admin = await asyncpg.connect(asyncpg_dsn(make_url(database_url).set(database="postgres").render_as_string(False)))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{blank.database}"')
        await admin.execute(f'CREATE DATABASE "{blank.database}"')
        app = create_app(database_url=blank.render_as_string(False), redis_url=redis_url)
        with pytest.raises(BaseExceptionGroup) as refused:
            async with AsyncTestClient(app):
                pass
        assert refused.group_contains(PendingMigrationsError, match="run `alliance db upgrade` first")
    finally:
        await asyncio.sleep(0)
        await admin.execute(f'DROP DATABASE IF EXISTS "{blank.database}" WITH (FORCE)')
        await admin.close()


@pytest.mark.parametrize(
    ("code", "status"),
    [("hold_not_pending", 409), ("insufficient_points", 422), ("account_not_found", 404),
     ("idempotency_key_reused", 409)],
)
async def test_ledger_rejections_are_problems_with_their_detail(client, code, status):
    body = assert_problem(await client.get(f"/test/refused/{code}"), status, code)
    assert body["hold_id"] == 7 and body["hold_status"] == "posted"
    assert body["title"] == code.replace("_", " ").capitalize()


async def test_statements_sent_to_the_driver_stay_in_the_sessions_transaction(db, pool, tenant_id):
    """driver_connection begins the session's transaction if no statement has yet: else a statement sent straight
    to asyncpg would commit on its own (found by settlement's dry-run test)."""
    from alliance.db import driver_connection

    class Undo(Exception):
        pass

    async def work(session):
        conn = await driver_connection(session)
        await conn.execute("INSERT INTO ledger_currencies (tenant_id, code, system_shards) VALUES ($1, 'UNDONE', 1)",
                           tenant_id)
        raise Undo

    with pytest.raises(Undo):
        await run_in_transaction(db.sessions, work)
    assert await pool.fetchval("SELECT count(*) FROM ledger_currencies WHERE tenant_id = $1", tenant_id) == 0
