"""The exchange through the SDK against the real app: the operator builds an alliance, brands link their members and
convert points between them with signed requests, and read, list and verify what they converted."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import alliance_sdk as sdk
import httpx
import pytest
from alliance_sdk import Alliance, AsyncAlliance, signing

from tests.sdk.parties import CoffeeAndAirline, link
from tests.sdk.transports import LoseFirstResponse


def test_the_operator_runs_the_exchange(operator: Alliance, join):
    coffee, airline = join("coffee", point_value="0.10"), join("airline", point_value="0.05")
    exchange = operator.admin.exchange

    participant = exchange.participants.retrieve(coffee.tenant.id)
    assert (participant.brand, participant.status, participant.net_debit_cap) == (
        coffee.code, "active", Decimal("1000000.00"))
    assert (participant.position.net_debit, participant.position.available) == (0, Decimal("1000000.00"))
    assert isinstance(participant.position.available, Decimal)
    assert {coffee.tenant.id, airline.tenant.id} <= {p.tenant_id for p in exchange.participants.list()}
    changed = exchange.participants.update(coffee.tenant.id, net_debit_cap=Decimal("5000.50"), cap_alarm_percent=50)
    assert (changed.net_debit_cap, changed.cap_alarm_percent, changed.status) == (Decimal("5000.50"), 50, "active")
    with pytest.raises(sdk.ParticipantExistsError):
        exchange.participants.admit(coffee.tenant.id, net_debit_cap="1.00")

    pair = exchange.pairs.open(coffee.tenant.id, airline.tenant.id)
    assert (pair.source_brand, pair.target_brand, pair.status) == (coffee.code, airline.code, "open")
    assert exchange.pairs.close(coffee.tenant.id, airline.tenant.id).status == "closed"
    assert exchange.pairs.open(coffee.tenant.id, airline.tenant.id).status == "open"
    assert (coffee.tenant.id, airline.tenant.id, "open") in {
        (p.source_tenant_id, p.target_tenant_id, p.status) for p in exchange.pairs.list()}
    with pytest.raises(sdk.PairNotFoundError):
        exchange.pairs.close(airline.tenant.id, coffee.tenant.id)

    card = exchange.rate_cards.create(coffee.tenant.id, airline.tenant.id, rate="1.5", fee_bps=50,
                                      member_daily_limit=1000, quote_ttl_seconds=60)
    assert (card.version, card.status, card.rate, card.fee_bps, card.member_daily_limit, card.pair_daily_cap) == (
        1, "in_force", Decimal("1.5"), 50, 1000, None)
    announced = exchange.rate_cards.create(coffee.tenant.id, airline.tenant.id,
                                           effective_at=datetime.now(UTC) + timedelta(days=1))
    assert (announced.version, announced.status, announced.rate) == (2, "scheduled", None)
    assert [c.id for c in exchange.rate_cards.list(source_tenant_id=coffee.tenant.id)] == [card.id, announced.id]
    with pytest.raises(sdk.RateExceedsPointValuesError) as too_generous:
        exchange.rate_cards.create(coffee.tenant.id, airline.tenant.id, rate="2.5")
    assert too_generous.value.max_rate == 2

    # Each brand sees the direction it takes part in, with the card in force and the one announced.
    for party in (coffee, airline):
        [price] = party.client.exchange.rates()
        assert (price.source_brand, price.target_brand, price.status) == (coffee.code, airline.code, "open")
        assert (price.in_force.id, [c.id for c in price.scheduled]) == (card.id, [announced.id])
    assert coffee.client.brand.retrieve().id == coffee.tenant.id


def test_members_link_across_brands(alliance: CoffeeAndAirline):
    coffee, airline = alliance.coffee, alliance.airline
    link_of_alice = coffee.client.links.retrieve("alice")
    assert (link_of_alice.identity, set(link_of_alice.brands)) == (alliance.identity, {coffee.code, airline.code})
    assert airline.client.links.retrieve("alice-air").identity == alliance.identity

    code = coffee.client.links.create_code("alice")
    assert (code.member, len(code.code), code.expires_at > datetime.now(UTC)) == ("alice", 14, True)
    airline.client.members.upsert("bob-air")
    airline.client.links.unlink("alice-air")
    with pytest.raises(sdk.AllianceLinkNotFoundError) as unlinked:
        airline.client.links.retrieve("alice-air")
    assert unlinked.value.status_code == 404
    assert airline.client.links.redeem(code.code, "alice-air").identity == alliance.identity  # linked again
    with pytest.raises(sdk.LinkCodeUsedError):
        airline.client.links.redeem(code.code, "bob-air")
    with pytest.raises(sdk.LinkCodeNotFoundError):
        airline.client.links.redeem("AAAA-BBBB-CCCC", "bob-air")


def test_a_conversion_at_once_is_read_and_verified_by_both_brands(alliance: CoffeeAndAirline):
    coffee, airline = alliance.coffee, alliance.airline
    conversion = coffee.client.conversions.create("alice", airline.code, 1000)
    # 1% fee on 1000 beans is 10; 990 beans at 2 miles a bean is 1980 miles.
    assert (conversion.status, conversion.role, conversion.member, conversion.replayed) == (
        "committed", "source", "alice", False)
    assert (conversion.source_amount, conversion.fee_amount, conversion.target_amount) == (1000, 10, 1980)
    assert (conversion.rate, conversion.gross_value, conversion.fee_value, conversion.net_value) == (
        2, Decimal("100"), Decimal("1"), Decimal("99"))
    assert isinstance(conversion.net_value, Decimal) and conversion.counterparty_identity == alliance.identity
    assert coffee.client.members.balance("alice").balance == 9000
    assert airline.client.members.balance("alice-air").balance == 1980

    seen = airline.client.conversions.retrieve(conversion.id)
    assert (seen.role, seen.member, seen.countersignature) == ("target", "alice-air", conversion.countersignature)
    record = coffee.client.conversions.verify(conversion)
    assert (record["conversion_id"], record["source"]["amount"], record["target"]["amount"]) == (conversion.id, 1000,
                                                                                                 1980)
    assert airline.client.conversions.verify(seen) == record

    header, payload, signature = conversion.countersignature.split(".")
    forged = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    with pytest.raises(sdk.CountersignatureError):
        coffee.client.conversions.verify(
            dataclasses.replace(conversion, countersignature=f"{header}.{payload}.{forged}"))
    with pytest.raises(sdk.CountersignatureError, match="not of conversion"):  # a genuine JWS, other figures
        coffee.client.conversions.verify(dataclasses.replace(conversion, target_amount=19_800))
    with pytest.raises(sdk.ConversionNotFoundError):
        coffee.client.conversions.retrieve(10**12)


def test_a_reservation_is_committed_or_aborted(alliance: CoffeeAndAirline):
    coffee, airline = alliance.coffee, alliance.airline
    reserved = coffee.client.conversions.reserve("alice", airline.code, 500, reserve_seconds=120)
    assert (reserved.status, reserved.countersignature, reserved.entry_id) == ("reserved", None, None)
    assert reserved.expires_at - reserved.created_at >= timedelta(seconds=119)
    assert coffee.client.members.balance("alice").available == 9500
    with pytest.raises(sdk.CountersignatureError, match="reserved"):
        coffee.client.conversions.verify(reserved)

    committed = coffee.client.conversions.commit(reserved.id)
    assert (committed.id, committed.status, committed.entry_id is not None) == (reserved.id, "committed", True)
    assert coffee.client.conversions.verify(committed)["conversion_id"] == reserved.id
    assert airline.client.members.balance("alice-air").balance == 990

    second = coffee.client.conversions.reserve("alice", airline.code, 300)
    aborted = coffee.client.conversions.abort(second.id, reason="changed_mind")
    assert (aborted.status, aborted.abort_reason) == ("aborted", "changed_mind")
    assert coffee.client.members.balance("alice").available == 9500
    with pytest.raises(sdk.ConversionNotReservedError) as not_reserved:
        coffee.client.conversions.commit(second.id)
    assert isinstance(not_reserved.value, sdk.ConflictError) and not_reserved.value.conversion_status == "aborted"


def test_a_quote_prices_one_conversion(alliance: CoffeeAndAirline):
    coffee, airline = alliance.coffee, alliance.airline
    quote = coffee.client.exchange.quote(airline.code, 1000)
    assert (quote.source_brand, quote.target_brand, quote.source_amount, quote.fee_amount, quote.target_amount) == (
        coffee.code, airline.code, 1000, 10, 1980)
    assert (quote.rate, quote.gross_value, quote.currency, quote.rate_card_version) == (2, 100, "CNY", 1)
    assert isinstance(quote.source_point_value, Decimal) and quote.expires_at > quote.created_at

    conversion = coffee.client.conversions.create("alice", airline.code, quote_id=quote.id)
    assert (conversion.quote_id, conversion.target_amount, conversion.status) == (quote.id, 1980, "committed")
    with pytest.raises(sdk.QuoteAlreadyUsedError) as used:
        coffee.client.conversions.create("alice", airline.code, quote_id=quote.id)
    assert used.value.conversion_id == conversion.id
    with pytest.raises(sdk.QuoteMismatchError):
        coffee.client.conversions.create("alice", airline.code, 600,
                                         quote_id=coffee.client.exchange.quote(airline.code, 500).id)
    with pytest.raises(sdk.QuoteNotFoundError):
        coffee.client.conversions.create("alice", airline.code, quote_id=10**12)


def test_points_go_to_a_friends_identity(alliance: CoffeeAndAirline):
    coffee, airline = alliance.coffee, alliance.airline
    coffee.client.members.upsert("bob")
    airline.client.members.upsert("bob-air")
    bob = link(airline, "bob-air", coffee, "bob")

    gift = coffee.client.conversions.create("alice", airline.code, 100, to_identity=bob)
    assert (gift.member, gift.counterparty_identity, gift.target_amount) == ("alice", bob, 198)
    received = airline.client.conversions.retrieve(gift.id)
    assert (received.member, received.counterparty_identity) == ("bob-air", alliance.identity)
    assert airline.client.members.balance("bob-air").balance == 198
    assert airline.client.members.balance("alice-air").balance == 0
    with pytest.raises(sdk.IdentityNotFoundError):
        coffee.client.conversions.create("alice", airline.code, 100, to_identity="idn_aaaaaaaaaaaaaaaa")


def test_conversions_are_listed_across_pages(alliance: CoffeeAndAirline):
    coffee, airline = alliance.coffee, alliance.airline
    made = [coffee.client.conversions.create("alice", airline.code, amount).id for amount in (10, 20, 30, 40)]
    reserved = coffee.client.conversions.reserve("alice", airline.code, 50).id

    assert [c.id for c in coffee.client.conversions.list(limit=2)] == [reserved, *reversed(made)]
    assert [c.id for c in coffee.client.conversions.list(status="reserved")] == [reserved]
    assert [(c.id, c.role) for c in airline.client.conversions.list(role="target", status="committed", limit=3)] == [
        (id_, "target") for id_ in reversed(made)]
    assert list(coffee.client.conversions.list(role="target")) == []

    page = coffee.client.conversions.list_page(limit=3)
    assert len(page.data) == 3 and page.next_cursor is not None
    rest = coffee.client.conversions.list_page(cursor=page.next_cursor, limit=3)
    assert [c.id for c in rest.data] == made[1::-1] and rest.next_cursor is None


def test_a_retry_after_a_lost_response_is_signed_afresh_and_replayed(alliance: CoffeeAndAirline, base_url: str):
    coffee, airline = alliance.coffee, alliance.airline
    transport = LoseFirstResponse()
    with Alliance(base_url=base_url, http_client=httpx.Client(transport=transport), tenant_id=coffee.tenant.id,
                  **coffee.options()) as flaky:
        conversion = flaky.conversions.create("alice", airline.code, 100)
    first, retry = transport.sent
    assert first.headers["idempotency-key"] == retry.headers["idempotency-key"]
    assert first.headers[signing.SIGNATURE_HEADER] != retry.headers[signing.SIGNATURE_HEADER]
    assert first.content == retry.content
    # The lost attempt converted; the retry got its outcome, once.
    assert (conversion.status, conversion.replayed) == ("committed", True)
    assert [c.id for c in coffee.client.conversions.list()] == [conversion.id]
    assert coffee.client.members.balance("alice").balance == 9900

    reserved = coffee.client.conversions.reserve("alice", airline.code, 100)
    key = str(uuid.uuid4())
    committed = coffee.client.conversions.commit(reserved.id, idempotency_key=key)
    again = coffee.client.conversions.commit(reserved.id, idempotency_key=key)
    assert (again.id, again.status, committed.replayed, again.replayed) == (reserved.id, "committed", False, True)
    assert coffee.client.members.balance("alice").balance == 9800


def test_refusals_raise_the_error_of_their_code(operator: Alliance, alliance: CoffeeAndAirline, join):
    coffee, airline = alliance.coffee, alliance.airline
    with pytest.raises(sdk.InsufficientPointsError):
        coffee.client.conversions.create("alice", airline.code, 20_000)
    with pytest.raises(sdk.AmountOutOfRangeError):
        coffee.client.conversions.create("alice", airline.code, 5)
    with pytest.raises(sdk.PairNotOpenError):
        airline.client.conversions.create("alice-air", coffee.code, 100)
    with pytest.raises(sdk.BrandNotFoundError):
        coffee.client.conversions.create("alice", "no-such-brand", 100)
    coffee.client.members.upsert("zed")
    with pytest.raises(sdk.MemberNotLinkedError) as unlinked:
        coffee.client.conversions.create("zed", airline.code, 100)
    assert unlinked.value.status_code == 422

    operator.admin.exchange.participants.update(coffee.tenant.id, net_debit_cap="5.00")
    with pytest.raises(sdk.NetDebitCapExceededError) as capped:
        coffee.client.conversions.create("alice", airline.code, 100)  # 100 beans are worth 10.00
    assert (capped.value.net_debit_cap, capped.value.requested) == (Decimal("5.00"), Decimal("10.00"))
    operator.admin.exchange.participants.update(coffee.tenant.id, net_debit_cap="1000000.00")

    operator.admin.exchange.rate_cards.create(coffee.tenant.id, airline.tenant.id, member_daily_limit=150)
    coffee.client.conversions.create("alice", airline.code, 100)
    with pytest.raises(sdk.MemberDailyLimitExceededError) as limited:
        coffee.client.conversions.create("alice", airline.code, 100)
    assert (limited.value.limit, limited.value.used, limited.value.requested) == (150, 100, 100)

    outsider = join("bakery", point_value="0.10", admit=False)
    outsider.client.members.upsert("olga")
    with pytest.raises(sdk.NotInExchangeError) as outside:
        outsider.client.conversions.create("olga", airline.code, 100)
    assert isinstance(outside.value, sdk.PermissionDeniedError)


def test_signature_problems_are_signature_errors(alliance: CoffeeAndAirline, base_url: str):
    coffee, airline = alliance.coffee, alliance.airline
    with Alliance(api_key=coffee.api_key, base_url=base_url) as unsigned:
        with pytest.raises(sdk.AllianceError, match="signing_key"):
            unsigned.conversions.create("alice", airline.code, 100)

    def refusal(**options) -> sdk.SignatureError:
        with Alliance(base_url=base_url, **(coffee.options() | options)) as client:
            with pytest.raises(sdk.SignatureError) as refused:
                client.conversions.create("alice", airline.code, 100)
        return refused.value

    unknown = refusal(signing_kid="never-registered")
    assert isinstance(unknown, sdk.SigningKeyUnknownError) and isinstance(unknown, sdk.AuthenticationError)
    assert isinstance(refusal(signing_key=signing.generate_signing_key()[0]), sdk.SignatureInvalidError)
    wrong_tenant = refusal(tenant_id=airline.tenant.id)
    assert isinstance(wrong_tenant, sdk.SignatureWrongTenantError) and wrong_tenant.status_code == 403
    coffee.client.signing_keys.revoke(coffee.kid)
    assert isinstance(refusal(), sdk.SigningKeyRevokedError)
    assert coffee.client.members.balance("alice").balance == 10_000


def test_the_client_fetches_its_brand_id_and_the_platform_keys_once(alliance: CoffeeAndAirline, base_url: str):
    coffee, airline = alliance.coffee, alliance.airline
    paths: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda request: paths.append(request.url.path)]})
    with Alliance(base_url=base_url, http_client=http, **coffee.options()) as client:
        conversions = [client.conversions.create("alice", airline.code, 100) for _ in range(2)]
        for conversion in conversions:
            client.conversions.verify(conversion)
        assert paths == ["/v1/brand", "/v1/conversions", "/v1/conversions", "/.well-known/jwks.json"]
        assert client.tenant_id == coffee.tenant.id

        # A cached key set that lacks the key a countersignature names (the platform rotated): fetched again.
        client._platform_jwks = {"keys": [{"kid": "retired", "kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]}
        client.conversions.verify(conversions[0])
        assert paths[-1] == "/.well-known/jwks.json" and len(paths) == 5
    http.close()


async def test_the_async_client_converts_too(alliance: CoffeeAndAirline, base_url: str, operator_key: str):
    coffee, airline = alliance.coffee, alliance.airline
    async with AsyncAlliance(base_url=base_url, **coffee.options()) as client:
        [price] = await client.exchange.rates()
        quote = await client.exchange.quote(price.target_brand, 200)
        reserved = await client.conversions.reserve("alice", airline.code, quote_id=quote.id)
        committed = await client.conversions.commit(reserved.id)
        assert (committed.status, committed.target_amount) == ("committed", quote.target_amount)
        assert (await client.conversions.verify(committed))["conversion_id"] == reserved.id
        aborted = await client.conversions.abort((await client.conversions.reserve("alice", airline.code, 10)).id)
        assert [c.id async for c in client.conversions.list(limit=1)] == [aborted.id, committed.id]
        assert (await client.conversions.retrieve(committed.id)).countersignature == committed.countersignature
        assert (await client.links.retrieve("alice")).identity == alliance.identity
        assert (await client.brand.retrieve()).code == coffee.code
    assert coffee.client.members.balance("alice").balance == 9800

    async with AsyncAlliance(api_key=operator_key, base_url=base_url) as operator:
        participant = await operator.admin.exchange.participants.retrieve(coffee.tenant.id)
        assert participant.position.debits == Decimal("20")
        cards = await operator.admin.exchange.rate_cards.list(target_tenant_id=airline.tenant.id)
        assert [c.version for c in cards] == [1]
        assert (coffee.tenant.id, airline.tenant.id) in {
            (p.source_tenant_id, p.target_tenant_id) for p in await operator.admin.exchange.pairs.list()}


@pytest.mark.parametrize(("status", "code", "error", "kind"), [
    (422, "net_debit_cap_exceeded", sdk.NetDebitCapExceededError, sdk.UnprocessableEntityError),
    (422, "member_daily_limit_exceeded", sdk.MemberDailyLimitExceededError, sdk.DailyLimitExceededError),
    (422, "pair_daily_cap_exceeded", sdk.PairDailyCapExceededError, sdk.DailyLimitExceededError),
    (422, "quote_expired", sdk.QuoteExpiredError, sdk.UnprocessableEntityError),
    (409, "quote_already_used", sdk.QuoteAlreadyUsedError, sdk.ConflictError),
    (422, "conversion_expired", sdk.ConversionExpiredError, sdk.UnprocessableEntityError),
    (422, "identity_not_linked_at_brand", sdk.IdentityNotLinkedAtBrandError, sdk.UnprocessableEntityError),
    (422, "link_code_expired", sdk.LinkCodeExpiredError, sdk.UnprocessableEntityError),
    (409, "participant_suspended", sdk.ParticipantSuspendedError, sdk.ConflictError),
    (401, "signature_missing", sdk.SignatureMissingError, sdk.AuthenticationError),
    (400, "signature_malformed", sdk.SignatureMalformedError, sdk.BadRequestError),
    (401, "signature_stale", sdk.SignatureStaleError, sdk.AuthenticationError),
    (409, "signature_replayed", sdk.SignatureReplayedError, sdk.ConflictError),
    (401, "signing_key_not_valid_now", sdk.SigningKeyNotValidNowError, sdk.AuthenticationError),
])
def test_each_exchange_code_has_its_class_under_its_status_class(status, code, error, kind):
    raised = sdk._errors.error_from_response(httpx.Response(status, json={"code": code, "status": status}))
    assert type(raised) is error and isinstance(raised, kind)
    assert isinstance(raised, sdk.SignatureError) == code.startswith(("signature_", "signing_key_"))
