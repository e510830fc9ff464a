"""/v1/admin/settlement: the operator settles the exchange window by window. The cut-off closes the open window
(`close`); its settlement is computed and proved (`compute`), each brand gets a signed statement
(`issue_statements`), each payment is recorded with its bank reference (`mark_paid`) until the window is settled.
A computed window may be abandoned before any payment (`abort`); brands' disputes are resolved here
(`resolve_dispute`).

A retry never does a step twice: done already, a step answers what it did (`abort` and `resolve_dispute` refuse
instead, with the status they left). So that `close()` is safe to retry too, it sends the open window's business
date, read first: without it, a retry after a lost answer would close the next window as well."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from alliance_sdk._models import Dispute, Settlement, Window
from alliance_sdk._request import APIRequest, fields, path
from alliance_sdk.resources._resource import AsyncResource, SyncResource, list_of
from alliance_sdk.resources.settlement import dispute_list

DisputeStatus = Literal["open", "accepted", "rejected"]


def _issued(data: dict[str, Any]) -> int:
    return data["issued"]


def _windows(limit: int | None) -> APIRequest:
    return APIRequest("GET", "/v1/admin/settlement/windows", params=fields(limit=limit))


def _open_business_date(newest: list[Window]) -> date | None:
    # The open window is the newest; with none open the server says so (NoOpenWindowError).
    return newest[0].business_date if newest and newest[0].status == "open" else None


def _close(business_date: date | None) -> APIRequest:
    return APIRequest("POST", "/v1/admin/settlement/windows/close", body=fields(business_date=business_date))


def _window_step(window_id: int, step: str, body: dict[str, Any] | None = None) -> APIRequest:
    return APIRequest("POST", path("v1", "admin", "settlement", "windows", window_id, step), body=body)


def _resolve(dispute_id: int, outcome: str, resolution: str, adjustment_fen: int | None) -> APIRequest:
    body = fields(outcome=outcome, resolution=resolution, adjustment_fen=adjustment_fen)
    return APIRequest("POST", path("v1", "admin", "settlement", "disputes", dispute_id, "resolve"), body=body)


class AdminSettlement(SyncResource):
    def windows(self, *, limit: int | None = None) -> list[Window]:
        """The windows, newest first (the open one first): the last `limit` (30 by default, 365 at most)."""
        return self._client._request(_windows(limit), list_of(Window))

    def close(self, business_date: date | None = None) -> Window:
        """The cut-off: closes the open window, or the one of `business_date` if it is open (if it is closed
        already, nothing changes), and answers it; the next window opens at once."""
        if business_date is None:
            business_date = _open_business_date(self.windows(limit=1))
        return self._client._request(_close(business_date), Window.from_json)

    def retrieve(self, window_id: int) -> Settlement:
        """The window with its settlement once computed: flows, adjustments, positions and the checks' report."""
        return self._client._request(APIRequest("GET", path("v1", "admin", "settlement", "windows", window_id)),
                                     Settlement.from_json)

    def compute(self, window_id: int) -> Settlement:
        """Computes a closed window's settlement and proves it by its checks (again: answers the first
        computation). Checks that fail keep nothing but their report: SettlementChecksFailedError (`.report`)."""
        return self._client._request(_window_step(window_id, "compute"), Settlement.from_json)

    def issue_statements(self, window_id: int) -> int:
        """Issues each brand's statement of a computed window (CSV and PDF, signed by the platform); answers how
        many brands got a new one (none the second time)."""
        return self._client._request(_window_step(window_id, "statements"), _issued)

    def mark_paid(self, window_id: int, *, brand: str, bank_ref: str) -> Window:
        """Records that the brand (a code) paid, or was paid, its position, under the bank's reference; its
        statement is issued again with it. The window is settled once every brand owing or owed is paid."""
        return self._client._request(_window_step(window_id, "payments", fields(brand=brand, bank_ref=bank_ref)),
                                     Window.from_json)

    def abort(self, window_id: int, *, reason: str) -> Window:
        """Abandons a computed window before any payment: its flows and adjustments are carried into the open
        window, to be settled there."""
        return self._client._request(_window_step(window_id, "abort", fields(reason=reason)), Window.from_json)

    def disputes(self, *, status: DisputeStatus | None = None) -> list[Dispute]:
        """Every brand's disputes, newest first."""
        return self._client._request(
            APIRequest("GET", "/v1/admin/settlement/disputes", params=fields(status=status)), dispute_list)

    def resolve_dispute(
        self, dispute_id: int, *, outcome: Literal["accepted", "rejected"], resolution: str,
        adjustment_fen: int | None = None,
    ) -> Dispute:
        """Rejects the dispute, or accepts it with `adjustment_fen`: what the disputing brand receives from the
        counterparty (negative: pays it), as an adjustment in the open window (a closed window is never edited)."""
        return self._client._request(_resolve(dispute_id, outcome, resolution, adjustment_fen), Dispute.from_json)


class AsyncAdminSettlement(AsyncResource):
    async def windows(self, *, limit: int | None = None) -> list[Window]:
        """The windows, newest first (the open one first): the last `limit` (30 by default, 365 at most)."""
        return await self._client._request(_windows(limit), list_of(Window))

    async def close(self, business_date: date | None = None) -> Window:
        """The cut-off: closes the open window, or the one of `business_date` if it is open (if it is closed
        already, nothing changes), and answers it; the next window opens at once."""
        if business_date is None:
            business_date = _open_business_date(await self.windows(limit=1))
        return await self._client._request(_close(business_date), Window.from_json)

    async def retrieve(self, window_id: int) -> Settlement:
        """The window with its settlement once computed: flows, adjustments, positions and the checks' report."""
        return await self._client._request(
            APIRequest("GET", path("v1", "admin", "settlement", "windows", window_id)), Settlement.from_json)

    async def compute(self, window_id: int) -> Settlement:
        """Computes a closed window's settlement and proves it by its checks (again: answers the first
        computation). Checks that fail keep nothing but their report: SettlementChecksFailedError (`.report`)."""
        return await self._client._request(_window_step(window_id, "compute"), Settlement.from_json)

    async def issue_statements(self, window_id: int) -> int:
        """Issues each brand's statement of a computed window (CSV and PDF, signed by the platform); answers how
        many brands got a new one (none the second time)."""
        return await self._client._request(_window_step(window_id, "statements"), _issued)

    async def mark_paid(self, window_id: int, *, brand: str, bank_ref: str) -> Window:
        """Records that the brand (a code) paid, or was paid, its position, under the bank's reference; its
        statement is issued again with it. The window is settled once every brand owing or owed is paid."""
        return await self._client._request(
            _window_step(window_id, "payments", fields(brand=brand, bank_ref=bank_ref)), Window.from_json)

    async def abort(self, window_id: int, *, reason: str) -> Window:
        """Abandons a computed window before any payment: its flows and adjustments are carried into the open
        window, to be settled there."""
        return await self._client._request(_window_step(window_id, "abort", fields(reason=reason)),
                                           Window.from_json)

    async def disputes(self, *, status: DisputeStatus | None = None) -> list[Dispute]:
        """Every brand's disputes, newest first."""
        return await self._client._request(
            APIRequest("GET", "/v1/admin/settlement/disputes", params=fields(status=status)), dispute_list)

    async def resolve_dispute(
        self, dispute_id: int, *, outcome: Literal["accepted", "rejected"], resolution: str,
        adjustment_fen: int | None = None,
    ) -> Dispute:
        """Rejects the dispute, or accepts it with `adjustment_fen`: what the disputing brand receives from the
        counterparty (negative: pays it), as an adjustment in the open window (a closed window is never edited)."""
        return await self._client._request(_resolve(dispute_id, outcome, resolution, adjustment_fen),
                                           Dispute.from_json)
