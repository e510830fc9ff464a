"""The SDK against the real app: uvicorn serves it on a free local port from a background thread (with its own
event loop), on this worker's test database and Redis."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import uvicorn
from alliance_sdk import Alliance, AsyncAlliance, signing

from alliance.app import create_app
from alliance.settings import get_settings
from tests.sdk.parties import CoffeeAndAirline, Party, link


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's data folder: it keeps the development data-encryption key (webhook secrets)."""
    return tmp_path_factory.mktemp("alliance-data")


@pytest.fixture(scope="session")
def base_url(database_url: str, redis_url: str, data_dir: Path) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ALLIANCE_DATA_DIR", str(data_dir))
        get_settings.cache_clear()
        app = create_app(database_url=database_url, redis_url=redis_url)
    get_settings.cache_clear()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # bound here and handed over: no race for the port
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    listener.close()


@pytest.fixture
def operator(base_url: str, operator_key: str) -> Iterator[Alliance]:
    with Alliance(api_key=operator_key, base_url=base_url) as client:
        yield client


@pytest.fixture
def brand_key(operator: Alliance) -> str:
    """The API key of a freshly admitted brand, so each test's members are its own."""
    tenant = operator.admin.tenants.create(code=f"brand-{uuid.uuid4().hex[:8]}", name="Coffee Chain",
                                           currency_code="BEANS", point_value="0.10")
    return operator.admin.keys.create(tenant.id, name="backend").secret


@pytest.fixture
def brand(base_url: str, brand_key: str) -> Iterator[Alliance]:
    with Alliance(api_key=brand_key, base_url=base_url) as client:
        yield client


@pytest.fixture
async def async_brand(base_url: str, brand_key: str):
    async with AsyncAlliance(api_key=brand_key, base_url=base_url) as client:
        yield client


@pytest.fixture
def join(operator: Alliance, base_url: str) -> Iterator[Callable[..., Party]]:
    """Onboards a brand, admits it to the exchange and registers a signing key it generated."""
    with ExitStack() as clients:

        def join_(name: str, *, point_value: str, net_debit_cap: str = "1000000.00", admit: bool = True) -> Party:
            tenant = operator.admin.tenants.create(code=f"{name}-{uuid.uuid4().hex[:8]}", name=name.title(),
                                                   currency_code="PTS", point_value=point_value)
            api_key = operator.admin.keys.create(tenant.id, name="backend").secret
            if admit:
                operator.admin.exchange.participants.admit(tenant.id, net_debit_cap=net_debit_cap)
            private_key, public_jwk = signing.generate_signing_key()
            client = clients.enter_context(Alliance(api_key=api_key, base_url=base_url, signing_key=private_key,
                                                    signing_kid="2025-01"))
            client.signing_keys.register("2025-01", public_jwk)
            return Party(tenant, api_key, private_key, "2025-01", client)

        yield join_


@pytest.fixture
def alliance(operator: Alliance, join) -> CoffeeAndAirline:
    """Coffee and airline in the exchange, coffee's points converting into the airline's (see CoffeeAndAirline)."""
    coffee, airline = join("coffee", point_value="0.10"), join("airline", point_value="0.05")
    operator.admin.exchange.pairs.open(coffee.tenant.id, airline.tenant.id)
    operator.admin.exchange.rate_cards.create(coffee.tenant.id, airline.tenant.id, fee_bps=100, min_amount=10)
    coffee.client.members.upsert("alice")
    coffee.client.members.credit("alice", 10_000, reason="seed")
    airline.client.members.upsert("alice-air")
    return CoffeeAndAirline(coffee, airline, link(coffee, "alice", airline, "alice-air"))


@pytest.fixture
def rate_limit(monkeypatch: pytest.MonkeyPatch):
    """Sets the server's per-key rate limit for the test (the server reads settings per request)."""

    def set_limit(per_second: int) -> None:
        monkeypatch.setenv("ALLIANCE_RATE_LIMIT_PER_SECOND", str(per_second))
        get_settings.cache_clear()

    yield set_limit
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _no_sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests pass keys and URLs explicitly; a developer's own settings must not leak in.
    monkeypatch.delenv("ALLIANCE_API_KEY", raising=False)
    monkeypatch.delenv("ALLIANCE_BASE_URL", raising=False)
    monkeypatch.delenv("ALLIANCE_SIGNING_KEY", raising=False)
    monkeypatch.delenv("ALLIANCE_SIGNING_KID", raising=False)
