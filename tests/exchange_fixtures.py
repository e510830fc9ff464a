"""An alliance to convert in, built over HTTP as an operator and brands would: brands onboarded and admitted to the
exchange with a signing key each, pairs opened with rate cards, members linked across brands. Signed requests are
signed with the SDK's own signing code, over the exact bytes sent. A plugin of tests/conftest.py: the exchange's
tests and settlement's use these fixtures, and the helpers at the end (balances, ledger sums, the JWKS, base64url)."""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from alliance_sdk import signing

from exchange.signing.service import SignedRequest
from tests.api import bearer


@dataclass
class Brand:
    tenant: dict[str, Any]
    headers: dict[str, str]
    private_key: str
    kid: str

    @property
    def id(self) -> int:
        return self.tenant["id"]

    @property
    def code(self) -> str:
        return self.tenant["code"]


def signed_request(brand: Brand, method: str, path: str, body: dict, *, key: str | None = None,
                   private_key: str | None = None, kid: str | None = None, tenant: int | None = None,
                   iat: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The exact bytes and the headers (API key, Idempotency-Key, Alliance-Signature) of a signed request."""
    content = json.dumps(body).encode()
    signature = signing.sign_request(private_key or brand.private_key, kid=kid or brand.kid,
                                     tenant=brand.id if tenant is None else tenant, method=method, path=path,
                                     body=content, iat=iat)
    headers = brand.headers | {"idempotency-key": key or uuid.uuid4().hex, signing.SIGNATURE_HEADER: signature,
                               "content-type": "application/json"}
    return content, headers


@pytest.fixture
def register_key(client):
    """Generates a key pair with the SDK and registers its public half for the brand; returns the private PEM."""

    async def register(headers: dict[str, str], kid: str, **window) -> str:
        private_pem, public_jwk = signing.generate_signing_key()
        response = await client.post("/v1/signing-keys", json={"kid": kid, "public_jwk": public_jwk, **window},
                                     headers=headers)
        assert response.status_code == 201, response.text
        return private_pem

    return register


@pytest.fixture
def admin(client, operator_key):
    """Calls the operator API; asserts the expected status."""

    async def call(method: str, path: str, body: dict | None = None, *, status: int = 200) -> Any:
        response = await client.request(method, path, json=body, headers=bearer(operator_key))
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    return call


@pytest.fixture
def exchange_brand(onboard, admin, register_key):
    """A brand admitted to the exchange with a signing key."""

    async def make(*, point_value: str = "0.10", cap: str = "1000000.00", currency: str = "PTS",
                   alarm_percent: int = 80, **tenant) -> Brand:
        created, headers = await onboard(point_value=point_value, currency_code=currency, **tenant)
        await admin("POST", "/v1/admin/exchange/participants",
                    {"tenant_id": created["id"], "net_debit_cap": cap, "cap_alarm_percent": alarm_percent},
                    status=201)
        kid = f"key-{os.urandom(3).hex()}"
        return Brand(created, headers, await register_key(headers, kid), kid)

    return make


@pytest.fixture
def open_pair(admin):
    """Opens source -> target with a rate card (now); returns the card."""

    async def open_(source: Brand, target: Brand, **card) -> dict:
        await admin("POST", "/v1/admin/exchange/pairs", {"source_tenant_id": source.id, "target_tenant_id": target.id},
                    status=201)
        return await admin("POST", "/v1/admin/exchange/rate-cards",
                           {"source_tenant_id": source.id, "target_tenant_id": target.id, **card}, status=201)

    return open_


@pytest.fixture
def member(client):
    """Creates a member of the brand, credited with `points`."""

    async def make(brand: Brand, external_id: str, points: int = 0) -> str:
        response = await client.post("/v1/members", json={"external_id": external_id}, headers=brand.headers)
        assert response.status_code in (200, 201), response.text
        if points:
            response = await client.post(f"/v1/members/{external_id}/credits", json={"amount": points, "reason": "seed"},
                                         headers=brand.headers | {"idempotency-key": uuid.uuid4().hex})
            assert response.status_code == 201, response.text
        return external_id

    return make


@pytest.fixture
def link(client):
    """Links a member of `a` with a member of `b` (a link code issued by a, redeemed at b); returns the identity."""

    async def link_(a: Brand, member_a: str, b: Brand, member_b: str) -> str:
        code = await client.post(f"/v1/members/{member_a}/link-codes", headers=a.headers)
        assert code.status_code == 201, code.text
        linked = await client.post("/v1/alliance-links", json={"code": code.json()["code"], "member": member_b},
                                   headers=b.headers)
        assert linked.status_code == 201, linked.text
        return linked.json()["identity"]

    return link_


@pytest.fixture
def convert(client):
    """POSTs a signed conversion request; returns the response."""

    async def post(brand: Brand, body: dict, **signing_options):
        content, headers = signed_request(brand, "POST", "/v1/conversions", body, **signing_options)
        return await client.post("/v1/conversions", content=content, headers=headers)

    return post


@pytest.fixture
def resolve(client):
    """Commits (or, with abort=True, aborts) a reserved conversion by a signed request; returns the response."""

    async def post(brand: Brand, conversion_id: int, *, abort: bool = False, body: dict | None = None,
                   **signing_options):
        path = f"/v1/conversions/{conversion_id}/{'abort' if abort else 'commit'}"
        content, headers = signed_request(brand, "POST", path, body if body is not None else {}, **signing_options)
        return await client.post(path, content=content, headers=headers)

    return post


@pytest.fixture
async def coffee_and_airline(exchange_brand, open_pair, member, link):
    """A coffee chain (1 BEAN = 0.10 CNY) whose points convert into an airline's (1 MILE = 0.05 CNY) at the
    derived rate (2 miles a bean) with a 1% fee; alice is a member of both, linked, with 10,000 beans."""
    coffee = await exchange_brand(point_value="0.10", currency="BEANS")
    airline = await exchange_brand(point_value="0.05", currency="MILES")
    card = await open_pair(coffee, airline, fee_bps=100, min_amount=10, max_amount=100_000)
    await member(coffee, "alice", 10_000)
    await member(airline, "alice-air")
    identity = await link(coffee, "alice", airline, "alice-air")
    return coffee, airline, card, identity


def accepted_signature(brand: Brand) -> SignedRequest:
    """A signature as the API hands it to the service once verified (unique, so the SQL accepts it once): for tests
    that call the conversion service directly, below HTTP."""
    now = datetime.now(UTC)
    return SignedRequest(tenant_id=brand.id, kid=brand.kid, header={}, body=b"{}", signature=f"test.{uuid.uuid4()}",
                         digest=os.urandom(32), issued_at=now)


async def balance(client, brand: Brand, member: str) -> dict:
    """The member's balance as the brand reads it (balance, held, available)."""
    response = await client.get(f"/v1/members/{member}/balance", headers=brand.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def ledger_sums(pool, *brands: Brand) -> dict[int, int]:
    """Per brand, the sum of all its account balances: zero, always (one currency per brand)."""
    rows = await pool.fetch("SELECT tenant_id, sum(balance) AS total FROM ledger_accounts WHERE tenant_id = ANY($1)"
                            " GROUP BY tenant_id", [b.id for b in brands])
    return {r["tenant_id"]: r["total"] for r in rows}


async def jwks_of(client) -> dict:
    """The platform's JWKS, as anyone reads it (no API key)."""
    return (await client.get("/.well-known/jwks.json")).json()


def b64(data: bytes) -> str:
    """base64url without padding, as in a JWS."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
