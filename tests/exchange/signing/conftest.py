"""Brands with signing keys registered over HTTP, and verification of signed requests through the service, in
a real transaction on this worker's database (as the exchange's signed routes will call it)."""

from __future__ import annotations

import pytest
from alliance_sdk import signing

from alliance.db.tenancy import in_tenant_transaction
from exchange.signing import service

PATH = "/v1/conversions"
BODY = b'{"from": "alice", "amount": 100, "note": "caf\xc3\xa9"}'


@pytest.fixture
def verify(db):
    """Runs verify_signed_request in a transaction of the tenant, committed like a request's."""

    async def run(tenant_id: int, signature: str | None, *, method: str = "POST", path: str = PATH,
                  body: bytes = BODY, now=None) -> service.SignedRequest:
        return await in_tenant_transaction(db.sessions, tenant_id, lambda session: service.verify_signed_request(
            session, tenant_id=tenant_id, method=method, path=path, body=body, signature=signature, now=now))

    return run


def sign(private_pem: str, *, kid: str, tenant: int, method: str = "POST", path: str = PATH, body: bytes = BODY,
         iat: int | None = None) -> str:
    return signing.sign_request(private_pem, kid=kid, tenant=tenant, method=method, path=path, body=body, iat=iat)
