"""/v1/settlement: the brand's side of settlement. Its statement of each window, as CSV and PDF files the platform
signs (`verify` checks a file against the platform's public keys), and its disputes of a statement's lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import httpx

from alliance_sdk._errors import CountersignatureError, StatementSignatureError
from alliance_sdk._models import Dispute, Statement, StatementSummary
from alliance_sdk._request import SIGNATURE_HEADER, APIRequest, fields, path
from alliance_sdk.resources._resource import AsyncResource, SyncResource, list_of

StatementFormat = Literal["csv", "pdf"]
VERSION_HEADER = "Alliance-Statement-Version"
# The platform's signatures of statements say so: a signature made for something else proves nothing here.
STATEMENT_TYPE = "alliance-statement+jws"


# The parse of a list of disputes, the brand's and (admin.settlement) every brand's.
dispute_list = list_of(Dispute)


def _download(window_id: int, format: StatementFormat) -> APIRequest:
    return APIRequest("GET", path("v1", "settlement", "statements", window_id, format), raw=True)


def _statement(window_id: int, format: StatementFormat) -> Callable[[httpx.Response], Statement]:
    def parse(response: httpx.Response) -> Statement:
        return Statement(window_id=window_id, format=format, version=int(response.headers[VERSION_HEADER]),
                         content=response.content, signature=response.headers[SIGNATURE_HEADER])

    return parse


def _dispute(window_id: int, counterparty: str, reason: str) -> APIRequest:
    return APIRequest("POST", "/v1/settlement/disputes",
                      body=fields(window_id=window_id, counterparty=counterparty, reason=reason))


def _verified(statement: Statement, jwks: dict[str, Any]) -> dict[str, Any]:
    from alliance_sdk import signing  # here: verifying needs the [signing] extra, the rest of the SDK does not

    what = f"the {statement.format} statement of window {statement.window_id} (version {statement.version})"
    try:
        header = signing.verify_detached(statement.signature, statement.content, jwks)
    except CountersignatureError as error:
        raise StatementSignatureError(f"{what}: {error}") from error
    if header.get("typ") != STATEMENT_TYPE:
        raise StatementSignatureError(f"{what}: the signature is not of a statement (typ {header.get('typ')!r})")
    # The platform signs what the file is too: a genuine signature of another statement does not pass for this one.
    claimed = (header.get("alliance_window"), header.get("format"), header.get("version"))
    if claimed != (statement.window_id, statement.format, statement.version):
        raise StatementSignatureError(f"{what}: the signature is of another statement (window, format, version "
                                      f"{claimed})")
    return header


class BrandSettlement(SyncResource):
    def statements(self) -> list[StatementSummary]:
        """The brand's latest statement of each window, newest first."""
        return self._client._request(APIRequest("GET", "/v1/settlement/statements"), list_of(StatementSummary))

    def statement(self, window_id: int, format: StatementFormat = "csv") -> Statement:
        """Downloads the brand's latest statement of the window, as CSV or PDF, with the platform's signature."""
        return self._client._request(_download(window_id, format), _statement(window_id, format))

    def verify(self, statement: Statement) -> dict[str, Any]:
        """The signature's protected header ("kid"; "iat", when it was signed; "alliance_tenant", "alliance_window",
        "format", "version": what it signs), once the platform's signature verifies over the statement's exact bytes
        and names this statement; StatementSignatureError otherwise. Needs the [signing] extra."""
        return _verified(statement, self._client._platform_jwks_for(statement.signature))

    def dispute(self, window_id: int, *, counterparty: str, reason: str) -> Dispute:
        """Disputes the line of the window's statement with `counterparty` (a brand code), within the dispute
        period; the operator resolves it, by an adjustment in a later window or not at all."""
        return self._client._request(_dispute(window_id, counterparty, reason), Dispute.from_json)

    def disputes(self) -> list[Dispute]:
        """The brand's disputes, newest first."""
        return self._client._request(APIRequest("GET", "/v1/settlement/disputes"), dispute_list)


class AsyncBrandSettlement(AsyncResource):
    async def statements(self) -> list[StatementSummary]:
        """The brand's latest statement of each window, newest first."""
        return await self._client._request(APIRequest("GET", "/v1/settlement/statements"), list_of(StatementSummary))

    async def statement(self, window_id: int, format: StatementFormat = "csv") -> Statement:
        """Downloads the brand's latest statement of the window, as CSV or PDF, with the platform's signature."""
        return await self._client._request(_download(window_id, format), _statement(window_id, format))

    async def verify(self, statement: Statement) -> dict[str, Any]:
        """The signature's protected header ("kid"; "iat", when it was signed; "alliance_tenant", "alliance_window",
        "format", "version": what it signs), once the platform's signature verifies over the statement's exact bytes
        and names this statement; StatementSignatureError otherwise. Needs the [signing] extra."""
        return _verified(statement, await self._client._platform_jwks_for(statement.signature))

    async def dispute(self, window_id: int, *, counterparty: str, reason: str) -> Dispute:
        """Disputes the line of the window's statement with `counterparty` (a brand code), within the dispute
        period; the operator resolves it, by an adjustment in a later window or not at all."""
        return await self._client._request(_dispute(window_id, counterparty, reason), Dispute.from_json)

    async def disputes(self) -> list[Dispute]:
        """The brand's disputes, newest first."""
        return await self._client._request(APIRequest("GET", "/v1/settlement/disputes"), dispute_list)
