"""Alliance links for brands: /v1/members/{id}/link-codes, /v1/members/{id}/alliance-link, /v1/alliance-links."""

from __future__ import annotations

from litestar import Controller, Request, delete, get, post
from litestar.params import JSONBody

from alliance.auth.guards import brand_only, caller_transaction
from exchange.identities import service
from exchange.identities.schemas import LinkCodeRead, LinkRead, LinkRedeem
from tenants.controllers import ExternalIdPath


class MemberLinkController(Controller):
    path = "/v1/members"
    tags = ["alliance links"]
    guards = [brand_only]

    @post("/{external_id:str}/link-codes", summary="A single-use code (10 min) for the member to link this "
                                                    "membership with one at another brand")
    async def issue_code(self, request: Request, external_id: ExternalIdPath) -> LinkCodeRead:
        return await caller_transaction(request, lambda s: service.issue_link_code(s, external_id))

    @get("/{external_id:str}/alliance-link", summary="The member's alliance identity and the brands it links")
    async def get_link(self, request: Request, external_id: ExternalIdPath) -> LinkRead:
        return await caller_transaction(request, lambda s: service.get_link(s, external_id))

    @delete("/{external_id:str}/alliance-link", summary="Unlink this membership from its alliance identity")
    async def unlink(self, request: Request, external_id: ExternalIdPath) -> None:
        await caller_transaction(request, lambda s: service.unlink(s, external_id))


class AllianceLinkController(Controller):
    path = "/v1/alliance-links"
    tags = ["alliance links"]
    guards = [brand_only]

    @post("/", summary="Redeem a link code another brand issued: link the member presenting it")
    async def redeem(self, request: Request, data: JSONBody[LinkRedeem]) -> LinkRead:
        return await caller_transaction(request, lambda s: service.redeem_link_code(s, data))


ROUTE_HANDLERS = [MemberLinkController, AllianceLinkController]
