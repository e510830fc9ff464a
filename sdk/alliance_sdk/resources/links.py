"""Alliance links: a member's memberships at two brands joined under one alliance identity, with the member's
consent. The first brand issues a link code to its member (`create_code`); the member gives it to the second
brand, which redeems it for its own member (`redeem`)."""

from __future__ import annotations

from alliance_sdk._models import AllianceLink, LinkCode
from alliance_sdk._request import APIRequest, fields, path
from alliance_sdk.resources._resource import AsyncResource, SyncResource, no_content


def _link_path(member: str) -> str:
    return path("v1", "members", member, "alliance-link")


class Links(SyncResource):
    def create_code(self, member: str) -> LinkCode:
        """A single-use code, valid 10 minutes, for `member` to give to another brand."""
        return self._client._request(APIRequest("POST", path("v1", "members", member, "link-codes")),
                                     LinkCode.from_json)

    def redeem(self, code: str, member: str) -> AllianceLink:
        """Links this brand's `member`, who presents `code`, with the member the code was issued for."""
        return self._client._request(APIRequest("POST", "/v1/alliance-links", body=fields(code=code, member=member)),
                                     AllianceLink.from_json)

    def retrieve(self, member: str) -> AllianceLink:
        """The member's alliance identity and the brands it links; AllianceLinkNotFoundError when it has none."""
        return self._client._request(APIRequest("GET", _link_path(member)), AllianceLink.from_json)

    def unlink(self, member: str) -> None:
        """Withdraws this membership from its alliance identity; the person's other memberships stay linked."""
        self._client._request(APIRequest("DELETE", _link_path(member)), no_content)


class AsyncLinks(AsyncResource):
    async def create_code(self, member: str) -> LinkCode:
        """A single-use code, valid 10 minutes, for `member` to give to another brand."""
        return await self._client._request(APIRequest("POST", path("v1", "members", member, "link-codes")),
                                           LinkCode.from_json)

    async def redeem(self, code: str, member: str) -> AllianceLink:
        """Links this brand's `member`, who presents `code`, with the member the code was issued for."""
        return await self._client._request(
            APIRequest("POST", "/v1/alliance-links", body=fields(code=code, member=member)), AllianceLink.from_json
        )

    async def retrieve(self, member: str) -> AllianceLink:
        """The member's alliance identity and the brands it links; AllianceLinkNotFoundError when it has none."""
        return await self._client._request(APIRequest("GET", _link_path(member)), AllianceLink.from_json)

    async def unlink(self, member: str) -> None:
        """Withdraws this membership from its alliance identity; the person's other memberships stay linked."""
        await self._client._request(APIRequest("DELETE", _link_path(member)), no_content)
