"""The brand API through HTTP: an app on the test database, an operator key, and onboarded brands."""

from __future__ import annotations

import os
import uuid

import pytest
from litestar.testing import AsyncTestClient

from alliance.app import create_app
from alliance.auth import service as keys
from alliance.auth.keys import KeyKind
from alliance.db import run_in_transaction


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


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def idem() -> dict[str, str]:
    return {"idempotency-key": uuid.uuid4().hex}


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
