"""The SDK against the real app: uvicorn serves it on a free local port from a background thread (with its own
event loop), on this worker's test database and Redis."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from alliance_sdk import Alliance, AsyncAlliance

from alliance.app import create_app
from alliance.settings import get_settings


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
