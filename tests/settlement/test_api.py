"""Settlement over HTTP, over several business days: the cut-off (late commits land in the next window, caps reset),
the computation and its proofs, statements signed by the platform, payments, disputes settled by adjustments in a
later window, and an abort that carries a window over."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from tests.api import assert_problem
from tests.exchange_fixtures import jwks_of
from tests.settlement.helpers import (
    close,
    compute,
    one_conversion_day,
    settlement,
    shift_source_amount,
    verify_statement,
)


async def test_a_day_settled_end_to_end(client, admin, coffee_and_airline, convert, resolve, exchange_brand):
    coffee, airline, _, _ = coffee_and_airline
    await close(admin)  # the window other tests converted in: this test's day starts now
    assert (await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 1000})).status_code == 201
    assert (await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 333})).status_code == 201
    # Reserved before the cut-off, committed after it: it belongs to the next window.
    late = (await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 200, "commit": False})).json()
    day_one = await close(admin)
    assert (day_one["status"], day_one["closed_at"] is not None) == ("closed", True)
    assert (await resolve(coffee, late["id"])).json()["window_id"] != day_one["id"]

    computed = await compute(admin, day_one["id"])
    assert computed["window"]["status"] == "pending_settlement"
    assert [(f["source_brand"], f["target_brand"], f["conversions"], f["source_points"], f["target_points"])
            for f in computed["flows"]] == [(coffee.code, airline.code, 2, 1333, 1980 + 658)]
    positions = {p["brand"]: p for p in computed["positions"]}
    # 1,333 beans at 0.10 = 133.30 gross; fees ceil(1%): 10 + 4 beans = 1.40; the airline receives 131.90.
    assert (Decimal(positions[coffee.code]["net"]), positions[coffee.code]["net_fen"]) == (Decimal("-133.3"), -13330)
    assert (Decimal(positions[airline.code]["net"]), positions[airline.code]["net_fen"]) == (Decimal("131.9"), 13190)
    assert (Decimal(computed["window"]["fee_income"]), computed["window"]["fee_income_fen"]) == (Decimal("1.4"), 140)
    assert computed["report"]["mismatches"] == [] and set(computed["report"]["checks"].values()) == {"ok"}
    # Computing again answers the same settlement and changes nothing.
    assert await compute(admin, day_one["id"]) == computed

    issued = await admin("POST", f"/v1/admin/settlement/windows/{day_one['id']}/statements")
    assert issued["issued"] == 2
    assert (await admin("POST", f"/v1/admin/settlement/windows/{day_one['id']}/statements"))["issued"] == 0
    listed = (await client.get("/v1/settlement/statements", headers=coffee.headers)).json()
    assert [(s["window_id"], s["version"], s["net_fen"]) for s in listed] == [(day_one["id"], 1, -13330)]
    jwks = await jwks_of(client)
    downloads = {}
    for kind in ("csv", "pdf"):
        download = await client.get(f"/v1/settlement/statements/{day_one['id']}/{kind}", headers=coffee.headers)
        assert download.status_code == 200, download.text
        verify_statement(download.content, download.headers["alliance-signature"], jwks)
        downloads[kind] = download
    rows = list(csv.reader(io.StringIO(downloads["csv"].text)))
    assert [airline.code, "2", "1333", "133.3", "1.4", "0", "0", "0", "-133.3"] in rows
    assert ["closing position", "-133.30"] in rows and ["bank reference", "(not paid yet)"] in rows
    # Another brand's statement is not found, whatever the brand asks.
    outsider = await exchange_brand()
    assert_problem(await client.get(f"/v1/settlement/statements/{day_one['id']}/csv", headers=outsider.headers),
                   404, "statement_not_found")

    paid = await admin("POST", f"/v1/admin/settlement/windows/{day_one['id']}/payments",
                       {"brand": coffee.code, "bank_ref": "CNAPS-0001"})
    assert paid["status"] == "pending_settlement"
    again = await admin("POST", f"/v1/admin/settlement/windows/{day_one['id']}/payments",
                        {"brand": coffee.code, "bank_ref": "CNAPS-0001"})
    assert again == paid
    assert (await admin("POST", f"/v1/admin/settlement/windows/{day_one['id']}/payments",
                        {"brand": coffee.code, "bank_ref": "OTHER"}, status=409))["code"] == "already_paid"
    settled = await admin("POST", f"/v1/admin/settlement/windows/{day_one['id']}/payments",
                          {"brand": airline.code, "bank_ref": "CNAPS-0002"})
    assert (settled["status"], settled["resolved_at"] is not None) == ("settled", True)
    reissued = (await client.get("/v1/settlement/statements", headers=coffee.headers)).json()[0]
    assert (reissued["version"], reissued["paid_at"] is not None) == (2, True)
    paid_csv = await client.get(f"/v1/settlement/statements/{day_one['id']}/csv", headers=coffee.headers)
    assert "CNAPS-0001" in paid_csv.text and paid_csv.headers["alliance-statement-version"] == "2"
    verify_statement(paid_csv.content, paid_csv.headers["alliance-signature"], jwks)



async def test_the_cutoff_resets_the_caps_and_late_commits_land_next_day(admin, exchange_brand, open_pair, member,
                                                                          link, convert, resolve):
    await close(admin)
    coffee = await exchange_brand(point_value="0.10", cap="100.00")
    airline = await exchange_brand(point_value="0.05")
    await open_pair(coffee, airline)
    await member(coffee, "ann", 10_000)
    await member(airline, "ann-air")
    await link(coffee, "ann", airline, "ann-air")
    body = {"member": "ann", "to_brand": airline.code}
    assert (await convert(coffee, {**body, "amount": 800})).status_code == 201  # 80.00 of the cap
    late = (await convert(coffee, {**body, "amount": 150, "commit": False})).json()  # 15.00 reserved
    assert_problem(await convert(coffee, {**body, "amount": 100}), 422, "net_debit_cap_exceeded")
    day_one = await close(admin)
    # The cut-off reset the cap (the open reservation still counts): 15 + 80 fits now.
    assert (await convert(coffee, {**body, "amount": 800})).status_code == 201
    assert (await resolve(coffee, late["id"])).json()["status"] == "committed"
    day_two = await close(admin)
    first, second = await compute(admin, day_one["id"]), await compute(admin, day_two["id"])
    assert [f["source_points"] for f in first["flows"] if f["source_brand"] == coffee.code] == [800]
    assert [f["source_points"] for f in second["flows"] if f["source_brand"] == coffee.code] == [950]
    # Day one is unpaid, so it opens day two's position.
    coffee_day_two = next(p for p in second["positions"] if p["brand"] == coffee.code)
    assert (coffee_day_two["opening_fen"], coffee_day_two["net_fen"], coffee_day_two["closing_fen"]) == (
        -8000, -9500, -17500)


async def test_a_dispute_is_settled_by_an_adjustment_in_a_later_window(client, admin, coffee_and_airline, convert):
    coffee, airline, _, _ = coffee_and_airline
    day, _ = await one_conversion_day(lambda: close(admin), convert, coffee_and_airline)
    await compute(admin, day["id"])
    disputed = await client.post("/v1/settlement/disputes", headers=airline.headers, json={
        "window_id": day["id"], "counterparty": coffee.code, "reason": "One conversion was never honoured"})
    assert disputed.status_code == 201, disputed.text
    assert (await settlement(admin, day["id"]))["window"]["status"] == "disputed"
    assert_problem(await client.post("/v1/settlement/disputes", headers=airline.headers, json={
        "window_id": day["id"], "counterparty": airline.code, "reason": "x"}), 404, "statement_line_not_found")
    resolved = await admin("POST", f"/v1/admin/settlement/disputes/{disputed.json()['id']}/resolve", {
        "outcome": "accepted", "resolution": "coffee refunds 5.00", "adjustment_fen": 500})
    assert (resolved["status"], Decimal(resolved["adjustment"]["amount"])) == ("accepted", Decimal(5))
    assert (await admin("POST", f"/v1/admin/settlement/disputes/{disputed.json()['id']}/resolve", {
        "outcome": "rejected", "resolution": "again"}, status=409))["code"] == "dispute_resolved"
    # The disputed window is not edited; the adjustment lands in the window open now.
    assert (await settlement(admin, day["id"]))["window"]["status"] == "pending_settlement"
    next_day = await close(admin)
    assert resolved["adjustment"]["id"] in [a["id"] for a in (await compute(admin, next_day["id"]))["adjustments"]]
    positions = {p["brand"]: p for p in (await settlement(admin, next_day["id"]))["positions"]}
    assert (positions[airline.code]["net_fen"], positions[coffee.code]["net_fen"]) == (500, -500)


async def test_an_abort_carries_the_window_into_the_open_one(admin, coffee_and_airline, convert):
    coffee, _, _, _ = coffee_and_airline
    day, _ = await one_conversion_day(lambda: close(admin), convert, coffee_and_airline)
    before = {p["brand"]: p["net_fen"] for p in (await compute(admin, day["id"]))["positions"]}
    aborted = await admin("POST", f"/v1/admin/settlement/windows/{day['id']}/abort", {"reason": "bank holiday"})
    assert aborted["status"] == "aborted"
    assert (await admin("POST", f"/v1/admin/settlement/windows/{day['id']}/payments",
                        {"brand": coffee.code, "bank_ref": "x"}, status=409))["code"] == "window_not_payable"
    carried = await compute(admin, (await close(admin))["id"])
    assert {p["brand"]: p["net_fen"] for p in carried["positions"]} == before
    assert carried["window"]["fee_income_fen"] == 100  # the fees (10 beans, 1.00) came along, to the operator


async def test_a_failed_check_keeps_nothing_but_its_report(admin, pool, coffee_and_airline, convert):
    day, converted = await one_conversion_day(lambda: close(admin), convert, coffee_and_airline)
    # A conversion record that no longer agrees with its journal entries.
    await shift_source_amount(pool, converted["id"], +1)
    refused = await admin("POST", f"/v1/admin/settlement/windows/{day['id']}/compute", status=409)
    assert refused["code"] == "settlement_checks_failed"
    assert {m["check"] for m in refused["report"]["mismatches"]} == {"journals"}
    assert (await settlement(admin, day["id"]))["window"]["status"] == "closed"
    assert await pool.fetchval("SELECT count(*) FROM settlement_flows WHERE window_id = $1", day["id"]) == 0
    assert await pool.fetchval("SELECT count(*) FROM settlement_failures WHERE window_id = $1", day["id"]) == 1
    # Fixed, it computes.
    await shift_source_amount(pool, converted["id"], -1)
    assert (await compute(admin, day["id"]))["window"]["status"] == "pending_settlement"
