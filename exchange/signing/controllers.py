"""The brand's signing-key API: /v1/signing-keys. Signed requests are verified by the routes they sign
(`signed_request` below), and consumed by the change they make."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from litestar import Controller, Request, get, post
from litestar.params import JSONBody, PathParameter

from alliance.auth.guards import brand_only, caller_transaction, current_principal
from exchange.signing import SIGNATURE_HEADER, service
from exchange.signing.schemas import KID_PATTERN, SigningKeyCreate, SigningKeyRead

Kid = Annotated[str, PathParameter(pattern=KID_PATTERN)]



async def signed_request(request: Request, conn: asyncpg.Connection) -> service.SignedRequest:
    """The brand's verified signature on this request (the Alliance-Signature header over the exact body), keys
    read through a process-wide cache. Not yet consumed: the SQL of the change it signs consumes it, re-checking
    the key's revocation, in that change's transaction."""
    return await service.check_signed_request(
        service.CachedKeys(conn), tenant_id=current_principal(request).tenant_id, method=request.method,
        path=request.url.path, body=await request.body(), signature=request.headers.get(SIGNATURE_HEADER),
    )


class SigningKeyController(Controller):
    path = "/v1/signing-keys"
    tags = ["signing"]
    guards = [brand_only]

    @post("/", summary="Register an Ed25519 public key (JWK) that signs the brand's transfers")
    async def register(self, request: Request, data: JSONBody[SigningKeyCreate]) -> SigningKeyRead:
        return service.key_read(await caller_transaction(request, lambda s: service.register_key(s, data)))

    @get("/", summary="The brand's signing keys, revoked and expired ones too")
    async def list_all(self, request: Request) -> list[SigningKeyRead]:
        return [service.key_read(k) for k in await caller_transaction(request, service.list_keys)]

    @post("/{kid:str}/revoke", summary="Revoke a signing key: what it signs is refused from now on", status_code=200)
    async def revoke(self, request: Request, kid: Kid) -> SigningKeyRead:
        return service.key_read(await caller_transaction(request, lambda s: service.revoke_key(s, kid)))


ROUTE_HANDLERS = [SigningKeyController]
