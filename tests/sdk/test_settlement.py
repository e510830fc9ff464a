"""Settlement through the SDK against the real app: the operator closes, computes and settles a window; each brand
downloads its signed statements and verifies them, and disputes a line, which the operator resolves.

Windows are global to the test database: each test first closes the window open now, so the next one holds only
its own conversions."""

from __future__ import annotations

import csv
import dataclasses
import io
from decimal import Decimal
from pathlib import Path

import alliance_sdk as sdk
import httpx
import pytest
from alliance_sdk import Alliance, AsyncAlliance, signing

from alliance.crypto.platform_key import platform_signer
from alliance.settings import Settings
from tests.sdk.parties import CoffeeAndAirline
from tests.sdk.transports import LoseFirstResponse


def a_day_of_conversions(operator: Alliance, alliance: CoffeeAndAirline, *amounts: int) -> sdk.Window:
    """A window of its own holding these conversions of alice's beans into miles, closed."""
    operator.admin.settlement.close()
    for amount in amounts:
        alliance.coffee.client.conversions.create("alice", alliance.airline.code, amount)
    return operator.admin.settlement.close()


def test_a_window_is_computed_stated_and_paid(operator: Alliance, alliance: CoffeeAndAirline):
    coffee, airline = alliance.coffee, alliance.airline
    settlement = operator.admin.settlement
    settlement.close()
    open_now = coffee.client.conversions.create("alice", airline.code, 1000).window_id
    with pytest.raises(sdk.WindowOpenError):
        settlement.compute(open_now)
    coffee.client.conversions.create("alice", airline.code, 333)
    day = settlement.close()
    assert (day.id, day.status, day.closed_at is not None, day.computed_at) == (open_now, "closed", True, None)
    # Closing the day again changes nothing: the window open now stays open.
    assert settlement.close(day.business_date) == day
    newest = settlement.windows(limit=2)
    assert [(w.id, w.status) for w in newest] == [(newest[0].id, "open"), (day.id, "closed")]

    computed = settlement.compute(day.id)
    assert (computed.window.status, computed.window.conversions) == ("pending_settlement", 2)
    assert [(f.source_brand, f.target_brand, f.conversions, f.source_points, f.target_points) for f in
            computed.flows] == [(coffee.code, airline.code, 2, 1333, 1980 + 658)]
    # 1,333 beans at 0.10 are 133.30 gross; fees 10 + 4 beans are 1.40; the airline receives 131.90.
    assert (computed.flows[0].gross, computed.flows[0].fees, computed.flows[0].net) == (
        Decimal("133.3"), Decimal("1.4"), Decimal("131.9"))
    assert (computed.position(coffee.code).net, computed.position(coffee.code).net_fen) == (Decimal("-133.3"), -13330)
    assert (computed.position(airline.code).net_fen, computed.position(airline.code).closing_fen) == (13190, 13190)
    assert (computed.window.fee_income, computed.window.fee_income_fen) == (Decimal("1.4"), 140)
    assert computed.report["mismatches"] == [] and set(computed.report["checks"].values()) == {"ok"}
    assert settlement.compute(day.id) == computed == settlement.retrieve(day.id)

    assert settlement.issue_statements(day.id) == 2
    assert settlement.issue_statements(day.id) == 0
    [summary] = coffee.client.settlement.statements()
    assert (summary.window_id, summary.version, summary.net_fen, summary.paid_at) == (day.id, 1, -13330, None)
    for format in ("csv", "pdf"):
        statement = coffee.client.settlement.statement(day.id, format)
        assert (statement.window_id, statement.format, statement.version) == (day.id, format, 1)
        assert coffee.client.settlement.verify(statement)["typ"] == "alliance-statement+jws"
    rows = list(csv.reader(io.StringIO(coffee.client.settlement.statement(day.id).content.decode())))
    assert [airline.code, "2", "1333", "133.3", "1.4", "0", "0", "0", "-133.3"] in rows
    assert coffee.client.settlement.statement(day.id, "pdf").content.startswith(b"%PDF")

    paid = settlement.mark_paid(day.id, brand=coffee.code, bank_ref="CNAPS-0001")
    assert (paid.status, settlement.mark_paid(day.id, brand=coffee.code, bank_ref="CNAPS-0001")) == (
        "pending_settlement", paid)
    with pytest.raises(sdk.AlreadyPaidError) as paid_already:
        settlement.mark_paid(day.id, brand=coffee.code, bank_ref="CNAPS-9999")
    assert paid_already.value.bank_ref == "CNAPS-0001"
    with pytest.raises(sdk.WindowPartlyPaidError) as partly_paid:
        settlement.abort(day.id, reason="bank holiday")
    assert partly_paid.value.paid_positions == 1
    settled = settlement.mark_paid(day.id, brand=airline.code, bank_ref="CNAPS-0002")
    assert (settled.status, settled.resolved_at is not None) == ("settled", True)
    # Paid, the statement is issued again with the bank's reference, signed again.
    reissued = coffee.client.settlement.statement(day.id)
    assert (reissued.version, b"CNAPS-0001" in reissued.content) == (2, True)
    coffee.client.settlement.verify(reissued)
    assert [s.version for s in coffee.client.settlement.statements()] == [2]
    assert settlement.retrieve(day.id).position(coffee.code).bank_ref == "CNAPS-0001"
    with pytest.raises(sdk.WindowNotAbortableError) as not_abortable:
        settlement.abort(day.id, reason="too late")
    assert not_abortable.value.window_status == "settled"


def test_a_statement_that_is_not_the_platforms_does_not_verify(alliance: CoffeeAndAirline, operator: Alliance,
                                                               data_dir: Path):
    coffee = alliance.coffee
    day = a_day_of_conversions(operator, alliance, 1000)
    operator.admin.settlement.compute(day.id)
    operator.admin.settlement.issue_statements(day.id)
    statement = coffee.client.settlement.statement(day.id)
    pdf = coffee.client.settlement.statement(day.id, "pdf")

    tampered = dataclasses.replace(statement, content=statement.content.replace(b"-100", b"-10"))
    assert tampered.content != statement.content
    for forged in (tampered, dataclasses.replace(statement, signature=pdf.signature),
                   dataclasses.replace(statement, signature="garbage")):
        with pytest.raises(sdk.StatementSignatureError, match=f"window {day.id}") as refused:
            coffee.client.settlement.verify(forged)
        assert isinstance(refused.value, sdk.CountersignatureError)
    # Signed by the platform's key, but not as a statement: it proves nothing about one.
    signer = platform_signer(Settings(data_dir=data_dir))
    claims = {"alliance_window": statement.window_id, "format": statement.format, "version": statement.version}
    other_use = signer.sign_detached(statement.content, typ="other+jws", issued_at=0, claims=claims)
    with pytest.raises(sdk.StatementSignatureError, match="not of a statement"):
        coffee.client.settlement.verify(dataclasses.replace(statement, signature=other_use))
    # A genuine statement signature that names another window does not pass for this one.
    elsewhere = signer.sign_detached(statement.content, typ="alliance-statement+jws", issued_at=0,
                                     claims={**claims, "alliance_window": statement.window_id + 1})
    with pytest.raises(sdk.StatementSignatureError, match="another statement"):
        coffee.client.settlement.verify(dataclasses.replace(statement, signature=elsewhere))
    assert coffee.client.settlement.verify(statement)["alliance_window"] == statement.window_id

    jwks = coffee.client.signing_keys.platform_jwks()
    header = signing.verify_detached(statement.signature, statement.content, jwks)
    assert header["kid"] == jwks["keys"][0]["kid"]
    with pytest.raises(signing.CountersignatureError, match="carries a payload"):
        signing.verify_detached(statement.signature.replace("..", ".e30."), statement.content, jwks)


def test_a_dispute_is_resolved_by_an_adjustment_in_the_open_window(operator: Alliance, alliance: CoffeeAndAirline):
    coffee, airline = alliance.coffee, alliance.airline
    settlement = operator.admin.settlement
    day = a_day_of_conversions(operator, alliance, 1000)
    with pytest.raises(sdk.WindowNotDisputableError) as not_computed:
        airline.client.settlement.dispute(day.id, counterparty=coffee.code, reason="too early")
    assert not_computed.value.window_status == "closed"
    settlement.compute(day.id)

    dispute = airline.client.settlement.dispute(day.id, counterparty=coffee.code,
                                                reason="One conversion was never honoured")
    assert (dispute.brand, dispute.counterparty, dispute.status, dispute.adjustment) == (
        airline.code, coffee.code, "open", None)
    assert settlement.retrieve(day.id).window.status == "disputed"
    assert airline.client.settlement.disputes() == [dispute]
    assert dispute.id in [d.id for d in settlement.disputes(status="open")]
    with pytest.raises(sdk.StatementLineNotFoundError):
        airline.client.settlement.dispute(day.id, counterparty=airline.code, reason="no such line")

    with pytest.raises(sdk.ValidationError) as no_amount:
        settlement.resolve_dispute(dispute.id, outcome="accepted", resolution="no amount")
    assert "adjustment_fen" in str(no_amount.value.errors)
    resolved = settlement.resolve_dispute(dispute.id, outcome="accepted", resolution="coffee refunds 5.00",
                                          adjustment_fen=500)
    assert (resolved.status, resolved.resolution, resolved.resolved_at is not None) == (
        "accepted", "coffee refunds 5.00", True)
    assert (resolved.adjustment.brand, resolved.adjustment.counterparty, resolved.adjustment.amount,
            resolved.adjustment.from_window_id) == (airline.code, coffee.code, Decimal("5"), day.id)
    assert resolved in settlement.disputes(status="accepted")
    with pytest.raises(sdk.DisputeResolvedError) as resolved_already:
        settlement.resolve_dispute(dispute.id, outcome="rejected", resolution="again")
    assert resolved_already.value.dispute_status == "accepted"
    with pytest.raises(sdk.DisputeNotFoundError):
        settlement.resolve_dispute(10**12, outcome="rejected", resolution="none")

    # The disputed window is not edited: the adjustment is settled in the window that was open.
    assert settlement.retrieve(day.id).window.status == "pending_settlement"
    next_day = settlement.compute(settlement.close().id)
    assert [a.id for a in next_day.adjustments] == [resolved.adjustment.id]
    assert (next_day.position(airline.code).net_fen, next_day.position(coffee.code).net_fen) == (500, -500)
    # Day one is unpaid, so it opens the next day's positions.
    assert next_day.position(coffee.code).opening_fen == -10000


def test_an_aborted_window_is_carried_into_the_open_one(operator: Alliance, alliance: CoffeeAndAirline, join):
    coffee, airline = alliance.coffee, alliance.airline
    settlement = operator.admin.settlement
    day = a_day_of_conversions(operator, alliance, 1000)
    with pytest.raises(sdk.WindowNotComputedError):
        settlement.issue_statements(day.id)
    with pytest.raises(sdk.WindowNotPayableError) as not_payable:
        settlement.mark_paid(day.id, brand=coffee.code, bank_ref="CNAPS-0001")
    assert not_payable.value.window_status == "closed"
    assert isinstance(not_payable.value, sdk.WindowStatusError) and isinstance(not_payable.value, sdk.ConflictError)
    before = {p.brand: p.net_fen for p in settlement.compute(day.id).positions}
    outsider = join("bakery", point_value="0.10")
    with pytest.raises(sdk.PositionNotFoundError):
        settlement.mark_paid(day.id, brand=outsider.code, bank_ref="CNAPS-0001")
    with pytest.raises(sdk.BrandNotFoundError):
        settlement.mark_paid(day.id, brand="no-such-brand", bank_ref="CNAPS-0001")

    aborted = settlement.abort(day.id, reason="bank holiday")
    assert (aborted.id, aborted.status, aborted.resolved_at is not None) == (day.id, "aborted", True)
    with pytest.raises(sdk.WindowNotPayableError):
        settlement.mark_paid(day.id, brand=coffee.code, bank_ref="CNAPS-0001")
    with pytest.raises(sdk.WindowNotDisputableError):
        airline.client.settlement.dispute(day.id, counterparty=coffee.code, reason="gone")
    carried = settlement.compute(settlement.close().id)
    assert {p.brand: p.net_fen for p in carried.positions} == before
    assert carried.window.fee_income_fen == 100  # the fees (10 beans, 1.00) came along, to the operator
    assert {a.from_window_id for a in carried.adjustments} == {day.id}

    with pytest.raises(sdk.WindowNotFoundError):
        settlement.compute(10**12)
    with pytest.raises(sdk.StatementNotFoundError):
        coffee.client.settlement.statement(day.id)


def test_a_close_retried_after_a_lost_answer_closes_one_window(operator_key: str, base_url: str,
                                                                operator: Alliance, join):
    join("coffee", point_value="0.10")  # the exchange has an open window once a brand is admitted
    open_now = operator.admin.settlement.windows(limit=1)[0]
    transport = LoseFirstResponse(method="POST")
    with Alliance(api_key=operator_key, base_url=base_url, http_client=httpx.Client(transport=transport)) as flaky:
        closed = flaky.admin.settlement.close()
    # Both attempts named the open window's day: the retry found it closed and answered it.
    assert [(r.method, r.content) for r in transport.sent[1:]] == [
        ("POST", f'{{"business_date":"{open_now.business_date}"}}'.encode())] * 2
    assert (closed.id, closed.status) == (open_now.id, "closed")
    after = operator.admin.settlement.windows(limit=2)
    assert [w.status for w in after] == ["open", "closed"] and after[1].id == open_now.id


async def test_the_async_clients_settle_too(operator_key: str, base_url: str, operator: Alliance,
                                            alliance: CoffeeAndAirline):
    coffee, airline = alliance.coffee, alliance.airline
    day = a_day_of_conversions(operator, alliance, 500)
    paths: list[str] = []

    async def record(request: httpx.Request) -> None:
        paths.append(request.url.path)

    async with (httpx.AsyncClient(event_hooks={"request": [record]}) as http,
                AsyncAlliance(api_key=operator_key, base_url=base_url) as async_operator,
                AsyncAlliance(base_url=base_url, http_client=http, **coffee.options()) as async_coffee):
        settlement = async_operator.admin.settlement
        assert (await settlement.compute(day.id)).position(coffee.code).net_fen == -5000
        assert day.id in [w.id for w in await settlement.windows()]
        assert await settlement.issue_statements(day.id) == 2
        [summary] = await async_coffee.settlement.statements()
        for format in ("csv", "pdf"):
            statement = await async_coffee.settlement.statement(summary.window_id, format)
            await async_coffee.settlement.verify(statement)
        # The platform's keys are fetched once, and serve conversions' countersignatures as well.
        [conversion] = [c async for c in async_coffee.conversions.list()]
        await async_coffee.conversions.verify(conversion)
        assert paths.count("/.well-known/jwks.json") == 1

        dispute = await async_coffee.settlement.dispute(day.id, counterparty=airline.code, reason="fee too high")
        assert [d.id for d in await async_coffee.settlement.disputes()] == [dispute.id]
        rejected = await settlement.resolve_dispute(dispute.id, outcome="rejected", resolution="the card said 1%")
        assert (rejected.status, rejected.adjustment) == ("rejected", None)
        assert rejected in await settlement.disputes(status="rejected")
        paid = await settlement.mark_paid(day.id, brand=coffee.code, bank_ref="CNAPS-0003")
        assert (paid.status, (await settlement.retrieve(day.id)).position(coffee.code).bank_ref) == (
            "pending_settlement", "CNAPS-0003")
        with pytest.raises(sdk.WindowPartlyPaidError):
            await settlement.abort(day.id, reason="too late")
        assert (await settlement.close()).status == "closed"


async def test_failed_checks_keep_nothing_but_their_report(operator_key: str, base_url: str, operator: Alliance,
                                                          alliance: CoffeeAndAirline, pool):
    day = a_day_of_conversions(operator, alliance, 1000)
    [conversion] = alliance.coffee.client.conversions.list()
    tamper = "UPDATE exchange_conversions SET source_amount = source_amount + $2 WHERE id = $1"
    # The conversion's record no longer agrees with its journal entries.
    await pool.execute(tamper, conversion.id, 1)
    async with AsyncAlliance(api_key=operator_key, base_url=base_url) as async_operator:
        with pytest.raises(sdk.SettlementChecksFailedError) as failed:
            await async_operator.admin.settlement.compute(day.id)
        assert {m["check"] for m in failed.value.report["mismatches"]} == {"journals"}
        assert failed.value.report["window_id"] == day.id
        assert (await async_operator.admin.settlement.retrieve(day.id)).window.status == "closed"
        await pool.execute(tamper, conversion.id, -1)
        assert (await async_operator.admin.settlement.compute(day.id)).window.status == "pending_settlement"


def test_the_refusals_no_test_here_provokes_map_to_their_classes():
    def refusal(status: int, code: str, **members) -> sdk.APIStatusError:
        return sdk._errors.error_from_response(httpx.Response(status, json={"code": code, "status": status,
                                                                            **members}))

    period_over = refusal(422, "dispute_period_over", dispute_days=7)
    assert isinstance(period_over, sdk.DisputePeriodOverError) and period_over.dispute_days == 7
    assert isinstance(period_over, sdk.UnprocessableEntityError)
    assert isinstance(refusal(409, "no_open_window"), sdk.NoOpenWindowError)
