"""/v1/admin/exchange: the operator admits brands to the exchange with a net debit cap (`participants`), opens the
directions their points convert in (`pairs`) and publishes each pair's prices and limits (`rate_cards`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from alliance_sdk._models import Pair, Participant, RateCard
from alliance_sdk._request import APIRequest, fields, path
from alliance_sdk.resources._resource import AsyncResource, SyncResource, list_of

if TYPE_CHECKING:
    from alliance_sdk._client import Alliance, AsyncAlliance

PARTICIPANTS = "/v1/admin/exchange/participants"
PAIRS = "/v1/admin/exchange/pairs"
RATE_CARDS = "/v1/admin/exchange/rate-cards"


def _exact(value: Decimal | str | None) -> str | None:
    # Money and rates go as strings: exact decimals, never floats.
    return None if value is None else str(value)


def _admit(tenant_id: int, net_debit_cap: Decimal | str, cap_alarm_percent: int | None) -> APIRequest:
    body = fields(tenant_id=tenant_id, net_debit_cap=_exact(net_debit_cap), cap_alarm_percent=cap_alarm_percent)
    return APIRequest("POST", PARTICIPANTS, body=body)


def _update_participant(
    tenant_id: int, status: str | None, net_debit_cap: Decimal | str | None, cap_alarm_percent: int | None
) -> APIRequest:
    body = fields(status=status, net_debit_cap=_exact(net_debit_cap), cap_alarm_percent=cap_alarm_percent)
    return APIRequest("PATCH", path("v1", "admin", "exchange", "participants", tenant_id), body=body)


def _open_pair(source_tenant_id: int, target_tenant_id: int) -> APIRequest:
    return APIRequest("POST", PAIRS, body=fields(source_tenant_id=source_tenant_id, target_tenant_id=target_tenant_id))


def _close_pair(source_tenant_id: int, target_tenant_id: int) -> APIRequest:
    return APIRequest("PATCH", path("v1", "admin", "exchange", "pairs", source_tenant_id, target_tenant_id),
                      body={"status": "closed"})


def _rate_card(
    *, source_tenant_id: int, target_tenant_id: int, effective_at: datetime | None, rate: Decimal | str | None,
    fee_bps: int | None, min_amount: int | None, max_amount: int | None, member_daily_limit: int | None,
    pair_daily_cap: int | None, quote_ttl_seconds: int | None,
) -> APIRequest:
    body = fields(source_tenant_id=source_tenant_id, target_tenant_id=target_tenant_id, effective_at=effective_at,
                  rate=_exact(rate), fee_bps=fee_bps, min_amount=min_amount, max_amount=max_amount,
                  member_daily_limit=member_daily_limit, pair_daily_cap=pair_daily_cap,
                  quote_ttl_seconds=quote_ttl_seconds)
    return APIRequest("POST", RATE_CARDS, body=body)


def _rate_cards(source_tenant_id: int | None, target_tenant_id: int | None) -> APIRequest:
    return APIRequest("GET", RATE_CARDS,
                      params=fields(source_tenant_id=source_tenant_id, target_tenant_id=target_tenant_id))


class Participants(SyncResource):
    def admit(
        self, tenant_id: int, *, net_debit_cap: Decimal | str, cap_alarm_percent: int | None = None
    ) -> Participant:
        """Admits a brand to the exchange. `net_debit_cap` is what it may owe the alliance within a settlement
        window, in the settlement currency (e.g. "50000.00"); the net_debit_cap.alarm webhook fires at
        `cap_alarm_percent` of it (default 80)."""
        return self._client._request(_admit(tenant_id, net_debit_cap, cap_alarm_percent), Participant.from_json)

    def list(self) -> list[Participant]:
        return self._client._request(APIRequest("GET", PARTICIPANTS), list_of(Participant))

    def retrieve(self, tenant_id: int) -> Participant:
        return self._client._request(APIRequest("GET", path("v1", "admin", "exchange", "participants", tenant_id)),
                                     Participant.from_json)

    def update(
        self, tenant_id: int, *, status: Literal["active", "suspended"] | None = None,
        net_debit_cap: Decimal | str | None = None, cap_alarm_percent: int | None = None,
    ) -> Participant:
        """Changes the fields given. A suspended brand's conversions, either way, are refused."""
        return self._client._request(_update_participant(tenant_id, status, net_debit_cap, cap_alarm_percent),
                                     Participant.from_json)


class Pairs(SyncResource):
    def open(self, source_tenant_id: int, target_tenant_id: int) -> Pair:
        """Lets the source brand's points be converted into the target brand's (one direction); reopens a closed
        pair. Both brands must be participants; conversions also need a rate card (`rate_cards.create`)."""
        return self._client._request(_open_pair(source_tenant_id, target_tenant_id), Pair.from_json)

    def close(self, source_tenant_id: int, target_tenant_id: int) -> Pair:
        """Stops conversions in this direction; `open` reopens it."""
        return self._client._request(_close_pair(source_tenant_id, target_tenant_id), Pair.from_json)

    def list(self) -> list[Pair]:
        return self._client._request(APIRequest("GET", PAIRS), list_of(Pair))


class RateCards(SyncResource):
    def create(
        self, source_tenant_id: int, target_tenant_id: int, *, effective_at: datetime | None = None,
        rate: Decimal | str | None = None, fee_bps: int | None = None, min_amount: int | None = None,
        max_amount: int | None = None, member_daily_limit: int | None = None, pair_daily_cap: int | None = None,
        quote_ttl_seconds: int | None = None,
    ) -> RateCard:
        """Publishes the pair's next rate card, in force now or from `effective_at`. Without `rate` (target
        points per source point) the rate is derived from the brands' point values; amounts and limits are in
        source points; the server's defaults apply to what is left out."""
        return self._client._request(
            _rate_card(source_tenant_id=source_tenant_id, target_tenant_id=target_tenant_id, effective_at=effective_at,
                       rate=rate, fee_bps=fee_bps, min_amount=min_amount, max_amount=max_amount,
                       member_daily_limit=member_daily_limit, pair_daily_cap=pair_daily_cap,
                       quote_ttl_seconds=quote_ttl_seconds),
            RateCard.from_json,
        )

    def list(self, *, source_tenant_id: int | None = None, target_tenant_id: int | None = None) -> list[RateCard]:
        """Every version of every pair's card, or of the pairs of one source or target brand."""
        return self._client._request(_rate_cards(source_tenant_id, target_tenant_id), list_of(RateCard))


class AdminExchange:
    """The operator's side of the exchange: `participants`, `pairs` and `rate_cards`."""

    def __init__(self, client: Alliance) -> None:
        self.participants = Participants(client)
        self.pairs = Pairs(client)
        self.rate_cards = RateCards(client)


class AsyncParticipants(AsyncResource):
    async def admit(
        self, tenant_id: int, *, net_debit_cap: Decimal | str, cap_alarm_percent: int | None = None
    ) -> Participant:
        """Admits a brand to the exchange. `net_debit_cap` is what it may owe the alliance within a settlement
        window, in the settlement currency (e.g. "50000.00"); the net_debit_cap.alarm webhook fires at
        `cap_alarm_percent` of it (default 80)."""
        return await self._client._request(_admit(tenant_id, net_debit_cap, cap_alarm_percent), Participant.from_json)

    async def list(self) -> list[Participant]:
        return await self._client._request(APIRequest("GET", PARTICIPANTS), list_of(Participant))

    async def retrieve(self, tenant_id: int) -> Participant:
        return await self._client._request(
            APIRequest("GET", path("v1", "admin", "exchange", "participants", tenant_id)), Participant.from_json
        )

    async def update(
        self, tenant_id: int, *, status: Literal["active", "suspended"] | None = None,
        net_debit_cap: Decimal | str | None = None, cap_alarm_percent: int | None = None,
    ) -> Participant:
        """Changes the fields given. A suspended brand's conversions, either way, are refused."""
        return await self._client._request(_update_participant(tenant_id, status, net_debit_cap, cap_alarm_percent),
                                           Participant.from_json)


class AsyncPairs(AsyncResource):
    async def open(self, source_tenant_id: int, target_tenant_id: int) -> Pair:
        """Lets the source brand's points be converted into the target brand's (one direction); reopens a closed
        pair. Both brands must be participants; conversions also need a rate card (`rate_cards.create`)."""
        return await self._client._request(_open_pair(source_tenant_id, target_tenant_id), Pair.from_json)

    async def close(self, source_tenant_id: int, target_tenant_id: int) -> Pair:
        """Stops conversions in this direction; `open` reopens it."""
        return await self._client._request(_close_pair(source_tenant_id, target_tenant_id), Pair.from_json)

    async def list(self) -> list[Pair]:
        return await self._client._request(APIRequest("GET", PAIRS), list_of(Pair))


class AsyncRateCards(AsyncResource):
    async def create(
        self, source_tenant_id: int, target_tenant_id: int, *, effective_at: datetime | None = None,
        rate: Decimal | str | None = None, fee_bps: int | None = None, min_amount: int | None = None,
        max_amount: int | None = None, member_daily_limit: int | None = None, pair_daily_cap: int | None = None,
        quote_ttl_seconds: int | None = None,
    ) -> RateCard:
        """Publishes the pair's next rate card, in force now or from `effective_at`. Without `rate` (target
        points per source point) the rate is derived from the brands' point values; amounts and limits are in
        source points; the server's defaults apply to what is left out."""
        return await self._client._request(
            _rate_card(source_tenant_id=source_tenant_id, target_tenant_id=target_tenant_id, effective_at=effective_at,
                       rate=rate, fee_bps=fee_bps, min_amount=min_amount, max_amount=max_amount,
                       member_daily_limit=member_daily_limit, pair_daily_cap=pair_daily_cap,
                       quote_ttl_seconds=quote_ttl_seconds),
            RateCard.from_json,
        )

    async def list(
        self, *, source_tenant_id: int | None = None, target_tenant_id: int | None = None
    ) -> list[RateCard]:
        """Every version of every pair's card, or of the pairs of one source or target brand."""
        return await self._client._request(_rate_cards(source_tenant_id, target_tenant_id), list_of(RateCard))


class AsyncAdminExchange:
    """The operator's side of the exchange: `participants`, `pairs` and `rate_cards`."""

    def __init__(self, client: AsyncAlliance) -> None:
        self.participants = AsyncParticipants(client)
        self.pairs = AsyncPairs(client)
        self.rate_cards = AsyncRateCards(client)
