"""The brand's signing-key API: /v1/signing-keys. Verification of signed requests is a service call the
exchange's own controllers make (`verify_request` below), in the transaction of the change they sign."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, PathParameter
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.auth.guards import brand_only, current_principal
from alliance.db.tenancy import in_tenant_transaction
from exchange.signing import SIGNATURE_HEADER, service
from exchange.signing.schemas import KID_PATTERN, SigningKeyCreate, SigningKeyRead

Kid = Annotated[str, PathParameter(pattern=KID_PATTERN)]


def _in_brand_transaction(request: Request, work):
    return in_tenant_transaction(request.app.state.db.sessions, current_principal(request).tenant_id, work)


async def verify_request(session: AsyncSession, request: Request) -> service.SignedRequest:
    """Verifies the brand's signature on this request (the Alliance-Signature header over the exact body) and
    records it as seen, in `session`'s transaction: call it first in the work of a signed route."""
    return await service.verify_signed_request(
        session, tenant_id=current_principal(request).tenant_id, method=request.method, path=request.url.path,
        body=await request.body(), signature=request.headers.get(SIGNATURE_HEADER),
    )


class SigningKeyController(Controller):
    path = "/v1/signing-keys"
    tags = ["signing"]
    guards = [brand_only]

    @post("/", summary="Register an Ed25519 public key (JWK) that signs the brand's transfers")
    async def register(self, request: Request, data: JSONBody[SigningKeyCreate]) -> SigningKeyRead:
        return service.key_read(await _in_brand_transaction(request, lambda s: service.register_key(s, data)))

    @get("/", summary="The brand's signing keys, revoked and expired ones too")
    async def list_all(self, request: Request) -> list[SigningKeyRead]:
        return [service.key_read(k) for k in await _in_brand_transaction(request, service.list_keys)]

    @post("/{kid:str}/revoke", summary="Revoke a signing key: what it signs is refused from now on", status_code=200)
    async def revoke(self, request: Request, kid: Kid) -> SigningKeyRead:
        return service.key_read(await _in_brand_transaction(request, lambda s: service.revoke_key(s, kid)))


ROUTE_HANDLERS = [SigningKeyController]
