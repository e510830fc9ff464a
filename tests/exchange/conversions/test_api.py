"""Conversions over HTTP: at once, reserved then committed or aborted; the price snapshotted and rounded against
the member; both brands' ledgers moved by balanced entries; every limit and refusal a named result that moves
nothing; idempotent retries; both brands told."""

from __future__ import annotations

import uuid
from decimal import Decimal

from tests.api import assert_problem
from tests.exchange_fixtures import balance, ledger_sums


async def test_convert_at_once(client, pool, coffee_and_airline, convert):
    coffee, airline, card, identity = coffee_and_airline
    response = await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 1000})
    assert response.status_code == 201, response.text
    conversion = response.json()
    # 1% fee on 1000 beans is 10; 990 beans at 2 miles a bean is 1980 miles.
    assert (conversion["status"], conversion["role"], conversion["member"]) == ("committed", "source", "alice")
    assert (conversion["source_amount"], conversion["fee_amount"], conversion["target_amount"]) == (1000, 10, 1980)
    assert (Decimal(conversion["rate"]), Decimal(conversion["gross_value"]), Decimal(conversion["fee_value"]),
            Decimal(conversion["net_value"])) == (2, Decimal("100"), Decimal("1"), Decimal("99"))
    assert (conversion["counterparty_identity"], conversion["replayed"]) == (identity, False)
    assert conversion["countersignature"] and conversion["window_id"] and conversion["entry_id"]
    assert (await balance(client, coffee, "alice"))["balance"] == 9000
    assert (await balance(client, airline, "alice-air"))["balance"] == 1980
    # The target brand reads it too, about its own member; the countersignature is the same for both.
    seen = (await client.get(f"/v1/conversions/{conversion['id']}", headers=airline.headers)).json()
    assert (seen["role"], seen["member"], seen["counterparty_identity"]) == ("target", "alice-air", identity)
    assert seen["countersignature"] == conversion["countersignature"]
    assert seen["entry_id"] != conversion["entry_id"]
    # Each leg is a balanced entry in its own brand's ledger, through the clearing accounts.
    out = (await client.get(f"/v1/entries/{conversion['entry_id']}", headers=coffee.headers)).json()
    assert {(p["account"], p["amount"]) for p in out["postings"]} == {("member:alice", -1000),
                                                                       ("system:clearing", 1000)}
    into = (await client.get(f"/v1/entries/{seen['entry_id']}", headers=airline.headers)).json()
    assert {(p["account"], p["amount"]) for p in into["postings"]} == {("member:alice-air", 1980),
                                                                        ("system:clearing", -1980)}
    assert out["metadata"]["conversion_id"] == into["metadata"]["conversion_id"] == conversion["id"]
    assert await ledger_sums(pool, coffee, airline) == {coffee.id: 0, airline.id: 0}


async def test_reserve_then_commit(client, coffee_and_airline, convert, resolve):
    coffee, airline, _, _ = coffee_and_airline
    reserved = await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 500, "commit": False})
    assert reserved.status_code == 201, reserved.text
    assert (reserved.json()["status"], reserved.json()["countersignature"]) == ("reserved", None)
    after_reserve = await balance(client, coffee, "alice")
    assert (after_reserve["balance"], after_reserve["held"], after_reserve["available"]) == (10_000, 500, 9500)
    assert (await balance(client, airline, "alice-air"))["balance"] == 0
    committed = await resolve(coffee, reserved.json()["id"])
    assert committed.status_code == 200, committed.text
    assert (committed.json()["status"], committed.json()["target_amount"]) == ("committed", 990)
    after_commit = await balance(client, coffee, "alice")
    assert after_commit["balance"] == 9500
    assert after_commit["held"] == 0
    assert (await balance(client, airline, "alice-air"))["balance"] == 990
    # Committing again is refused: the conversion is done.
    assert_problem(await resolve(coffee, reserved.json()["id"]), 409, "conversion_not_reserved")


async def test_reserve_then_abort(client, coffee_and_airline, convert, resolve):
    coffee, airline, _, _ = coffee_and_airline
    reserved = await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 500, "commit": False})
    aborted = await resolve(coffee, reserved.json()["id"], abort=True, body={"reason": "changed_mind"})
    assert aborted.status_code == 200, aborted.text
    assert (aborted.json()["status"], aborted.json()["abort_reason"]) == ("aborted", "changed_mind")
    assert (await balance(client, coffee, "alice"))["available"] == 10_000
    assert (await balance(client, airline, "alice-air"))["balance"] == 0
    assert_problem(await resolve(coffee, reserved.json()["id"]), 409, "conversion_not_reserved")
    # Only the source brand commits or aborts; to the target brand the conversion is not its to act on.
    assert_problem(await resolve(airline, reserved.json()["id"]), 404, "conversion_not_found")


async def test_a_gift_to_a_friend_through_their_identity(client, coffee_and_airline, member, link, convert):
    coffee, airline, _, _ = coffee_and_airline
    await member(coffee, "bob")
    await member(airline, "bob-air")
    bobs = await link(airline, "bob-air", coffee, "bob")  # linked from the airline's side this time
    response = await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 100,
                                      "to_identity": bobs})
    assert response.status_code == 201, response.text
    assert response.json()["counterparty_identity"] == bobs
    assert (await balance(client, airline, "bob-air"))["balance"] == 198
    assert (await balance(client, airline, "alice-air"))["balance"] == 0
    seen = (await client.get(f"/v1/conversions/{response.json()['id']}", headers=airline.headers)).json()
    assert seen["member"] == "bob-air"


async def test_quotes_lock_a_price_once(client, pool, coffee_and_airline, convert, admin):
    coffee, airline, _, _ = coffee_and_airline
    quoted = await client.post("/v1/exchange/quotes", json={"to_brand": airline.code, "amount": 300},
                               headers=coffee.headers)
    assert quoted.status_code == 201, quoted.text
    quote = quoted.json()
    assert (quote["source_amount"], quote["fee_amount"], quote["target_amount"]) == (300, 3, 594)
    # A new card (a worse rate) takes effect; the quote keeps its price.
    await admin("POST", "/v1/admin/exchange/rate-cards", {"source_tenant_id": coffee.id, "target_tenant_id": airline.id,
                                                           "rate": "1", "fee_bps": 100}, status=201)
    used = await convert(coffee, {"member": "alice", "to_brand": airline.code, "quote_id": quote["id"]})
    assert used.status_code == 201, used.text
    assert (used.json()["target_amount"], used.json()["quote_id"]) == (594, quote["id"])
    assert_problem(await convert(coffee, {"member": "alice", "to_brand": airline.code, "quote_id": quote["id"]}),
                   409, "quote_already_used")
    # Without a quote, the card in force now prices it.
    assert (await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 300})).json()[
        "target_amount"] == 297
    another = (await client.post("/v1/exchange/quotes", json={"to_brand": airline.code, "amount": 300},
                                 headers=coffee.headers)).json()
    assert_problem(await convert(coffee, {"member": "alice", "to_brand": airline.code, "quote_id": another["id"],
                                          "amount": 301}), 422, "quote_mismatch")
    await pool.execute("UPDATE exchange_quotes SET expires_at = now() - interval '1 second' WHERE id = $1",
                       another["id"])
    assert_problem(await convert(coffee, {"member": "alice", "to_brand": airline.code, "quote_id": another["id"]}),
                   422, "quote_expired")
    assert_problem(await convert(coffee, {"member": "alice", "to_brand": airline.code, "quote_id": 2**40}),
                   404, "quote_not_found")
    # Another brand cannot use (or see) this brand's quote.
    assert_problem(await client.post("/v1/exchange/quotes", json={"to_brand": coffee.code, "amount": 300},
                                     headers=airline.headers), 422, "pair_not_open")


async def test_rounding_is_against_the_member_and_the_remainder_is_recorded(exchange_brand, open_pair, member, link,
                                                                           convert):
    coffee = await exchange_brand(point_value="0.10")
    airline = await exchange_brand(point_value="0.07")
    # derived rate: trunc(0.10 / 0.07, 12) = 1.428571428571; fee ceil(1234 * 0.0033) = ceil(4.0722) = 5
    await open_pair(coffee, airline, fee_bps=33)
    await member(coffee, "carol", 5000)
    await member(airline, "carol-air")
    await link(coffee, "carol", airline, "carol-air")
    conversion = (await convert(coffee, {"member": "carol", "to_brand": airline.code, "amount": 1234})).json()
    assert (conversion["fee_amount"], Decimal(conversion["rate"])) == (5, Decimal("1.428571428571"))
    exact = (1234 - 5) * Decimal("1.428571428571")
    assert conversion["target_amount"] == int(exact) == 1755
    assert Decimal(conversion["remainder"]) == exact - 1755
    # The member never receives more value than was debited less the fee.
    assert conversion["target_amount"] * Decimal("0.07") <= Decimal(conversion["net_value"]) == Decimal("122.9")


async def test_limits_and_caps(client, pool, exchange_brand, open_pair, member, link, convert, resolve, admin):
    coffee = await exchange_brand(point_value="0.10", cap="140.00", alarm_percent=50)
    airline = await exchange_brand(point_value="0.05")
    await open_pair(coffee, airline, member_daily_limit=700, pair_daily_cap=1500)
    for name in ("dan", "eve", "fay"):
        await member(coffee, name, 2000)
        await member(airline, f"{name}-air")
        await link(coffee, name, airline, f"{name}-air")

    async def convert_(who: str, amount: int, **extra):
        return await convert(coffee, {"member": who, "to_brand": airline.code, "amount": amount, **extra})

    assert (await convert_("dan", 600)).status_code == 201
    refused = assert_problem(await convert_("dan", 101), 422, "member_daily_limit_exceeded")
    assert (refused["limit"], refused["used"], refused["requested"]) == (700, 600, 101)
    # A reservation counts against the limits while it is open; aborting gives it back.
    reserved = await convert_("eve", 700, commit=False)
    assert reserved.status_code == 201, reserved.text
    assert_problem(await convert_("fay", 300), 422, "pair_daily_cap_exceeded")  # 600 + 700 + 300 > 1500
    await resolve(coffee, reserved.json()["id"], abort=True)
    # The net debit cap (140.00 CNY): 600 + 200 beans = 80.00 so far.
    assert (await convert_("fay", 200)).status_code == 201
    capped = assert_problem(await convert_("eve", 700), 422, "net_debit_cap_exceeded")
    assert (capped["net_debit_cap"], capped["net_debit"], capped["requested"]) == (
        "140", "80", "70")  # exact decimals, never floats
    # The alarm fired once, when 50% was first reached (by eve's reservation: 130 of 140).
    alarms = await pool.fetch("SELECT payload::text FROM outbox_events WHERE tenant_id = $1 AND event_type = $2",
                              coffee.id, "net_debit_cap.alarm")
    assert len(alarms) == 1 and '"net_debit": "130"' in alarms[0][0]
    # A higher cap makes room; the refused conversion's usage was never counted (the pair cap still fits it).
    participant = await admin("PATCH", f"/v1/admin/exchange/participants/{coffee.id}", {"net_debit_cap": "200"})
    assert Decimal(participant["position"]["available"]) == Decimal(120)
    assert (await convert_("eve", 700)).status_code == 201
    # Nothing the refusals touched moved: dan spent 600, eve 700, fay 200.
    assert [(await balance(client, coffee, m))["balance"] for m in ("dan", "eve", "fay")] == [1400, 1300, 1800]


async def test_who_and_what_may_convert(client, coffee_and_airline, exchange_brand, member, convert, admin, onboard):
    coffee, airline, _, _ = coffee_and_airline
    body = {"member": "alice", "to_brand": airline.code, "amount": 100}
    assert_problem(await convert(coffee, {**body, "member": "nobody"}), 404, "member_not_found")
    assert_problem(await convert(coffee, {**body, "to_brand": "no-such-brand"}), 404, "brand_not_found")
    await member(coffee, "zed", 500)
    assert_problem(await convert(coffee, {**body, "member": "zed"}), 422, "member_not_linked")
    assert_problem(await convert(coffee, {**body, "to_identity": "idn_" + "a" * 16}), 404, "identity_not_found")
    assert_problem(await convert(coffee, {**body, "amount": 5}), 422, "amount_out_of_range")  # min 10
    short = assert_problem(await convert(coffee, {**body, "amount": 20_000}), 422, "insufficient_points")
    assert (short["member"], short["available"], short["requested"]) == ("alice", 10_000, 20_000)
    assert "account_id" not in short  # ledger accounts are the platform's business
    outsider, _ = await onboard()
    assert_problem(await convert(coffee, {**body, "to_brand": outsider["code"]}), 422, "brand_not_in_exchange")
    third = await exchange_brand()
    assert_problem(await convert(coffee, {**body, "to_brand": third.code}), 422, "pair_not_open")
    assert_problem(await client.post("/v1/exchange/quotes", json={"to_brand": coffee.code, "amount": 100},
                                     headers=airline.headers), 422, "pair_not_open")  # directed: no airline -> coffee
    # Frozen on either side.
    await client.patch("/v1/members/alice-air", json={"status": "frozen"}, headers=airline.headers)
    assert_problem(await convert(coffee, body), 409, "member_frozen")
    await client.patch("/v1/members/alice-air", json={"status": "active"}, headers=airline.headers)
    await client.patch("/v1/members/alice", json={"status": "frozen"}, headers=coffee.headers)
    assert_problem(await convert(coffee, body), 409, "member_frozen")
    await client.patch("/v1/members/alice", json={"status": "active"}, headers=coffee.headers)
    # A closed pair, then a suspended brand.
    await admin("PATCH", f"/v1/admin/exchange/pairs/{coffee.id}/{airline.id}", {"status": "closed"})
    assert_problem(await convert(coffee, body), 422, "pair_not_open")
    await admin("PATCH", f"/v1/admin/exchange/pairs/{coffee.id}/{airline.id}", {"status": "open"})
    await admin("PATCH", f"/v1/admin/exchange/participants/{airline.id}", {"status": "suspended"})
    assert_problem(await convert(coffee, body), 409, "participant_suspended")
    await admin("PATCH", f"/v1/admin/exchange/participants/{airline.id}", {"status": "active"})
    assert (await convert(coffee, body)).status_code == 201
    assert (await balance(client, coffee, "alice"))["balance"] == 9900


async def test_bad_requests_change_nothing(client, coffee_and_airline, convert):
    coffee, airline, _, _ = coffee_and_airline
    for body in ({"member": "alice", "to_brand": airline.code},  # neither amount nor quote
                 {"member": "alice", "to_brand": airline.code, "amount": 0},
                 {"member": "alice", "to_brand": airline.code, "amount": 10, "reserve_seconds": 1},
                 {"member": "alice", "to_brand": airline.code, "amount": 10, "to_identity": "bob"},
                 {"member": "alice", "to_brand": airline.code, "amount": 10, "surprise": True},
                 {"member": "alice", "to_brand": "Airline!", "amount": 10}):
        assert_problem(await convert(coffee, body), 422, "validation_error")
    assert (await balance(client, coffee, "alice"))["balance"] == 10_000


async def test_retries_get_the_stored_outcome(client, coffee_and_airline, convert, member):
    coffee, airline, _, _ = coffee_and_airline
    key = uuid.uuid4().hex
    body = {"member": "alice", "to_brand": airline.code, "amount": 100}
    first = await convert(coffee, body, key=key)
    again = await convert(coffee, body, key=key)  # signed afresh, as every attempt must be
    assert again.status_code == 201, again.text
    assert (again.json()["id"], again.json()["replayed"]) == (first.json()["id"], True)
    assert (await balance(client, coffee, "alice"))["balance"] == 9900
    assert_problem(await convert(coffee, {**body, "amount": 101}, key=key), 409, "idempotency_key_reused")
    # A refusal is an outcome too: the same request with its key is refused the same way, even once it could pass.
    await member(coffee, "poor", 50)
    refused_key = uuid.uuid4().hex
    assert_problem(await convert(coffee, {**body, "member": "poor"}, key=refused_key), 422, "member_not_linked")
    assert_problem(await convert(coffee, {**body, "member": "poor"}, key=refused_key), 422, "member_not_linked")


async def test_a_reservation_past_its_deadline_is_never_committed(client, pool, coffee_and_airline, convert, resolve,
                                                                  db):
    from alliance.db import run_in_transaction
    from exchange.conversions.tasks import expire_conversions

    coffee, airline, _, _ = coffee_and_airline
    late = (await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 100, "commit": False})).json()
    swept = (await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 200,
                                    "commit": False})).json()
    await pool.execute("UPDATE exchange_conversions SET expires_at = now() - interval '1 ms' WHERE id = ANY($1)",
                       [late["id"], swept["id"]])
    refused = assert_problem(await resolve(coffee, late["id"]), 422, "conversion_expired")
    assert refused["conversion_id"] == late["id"]
    assert (await client.get(f"/v1/conversions/{late['id']}", headers=coffee.headers)).json()["status"] == "expired"
    # The expiry job ends the other one: points released, nothing issued.
    assert await run_in_transaction(db.sessions, lambda s: expire_conversions(s)) >= 1
    assert (await client.get(f"/v1/conversions/{swept['id']}", headers=coffee.headers)).json()["status"] == "expired"
    assert_problem(await resolve(coffee, swept["id"]), 409, "conversion_not_reserved")
    after = await balance(client, coffee, "alice")
    assert (after["balance"], after["held"]) == (10_000, 0)
    assert (await balance(client, airline, "alice-air"))["balance"] == 0


async def test_both_brands_are_told(pool, coffee_and_airline, convert, resolve):
    coffee, airline, _, identity = coffee_and_airline
    converted = (await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 100})).json()
    reserved = (await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 100,
                                       "commit": False})).json()
    await resolve(coffee, reserved["id"], abort=True)
    rows = await pool.fetch(
        """SELECT tenant_id, event_type, payload::text FROM outbox_events
           WHERE tenant_id = ANY($1) AND event_type LIKE 'conversion.%' ORDER BY id""", [coffee.id, airline.id])
    import json
    events = [(r["tenant_id"], r["event_type"], json.loads(r["payload"])) for r in rows]
    assert [(t, e, p["conversion_id"]) for t, e, p in events] == [
        (coffee.id, "conversion.committed", converted["id"]), (airline.id, "conversion.committed", converted["id"]),
        (coffee.id, "conversion.reserved", reserved["id"]), (airline.id, "conversion.reserved", reserved["id"]),
        (coffee.id, "conversion.aborted", reserved["id"]), (airline.id, "conversion.aborted", reserved["id"])]
    coffee_side, airline_side = events[0][2], events[1][2]
    assert (coffee_side["member"], coffee_side["role"], coffee_side["counterparty_identity"]) == (
        "alice", "source", identity)
    assert (airline_side["member"], airline_side["role"], airline_side["target_amount"]) == ("alice-air", "target", 198)


async def test_listing_conversions_of_both_roles(client, coffee_and_airline, open_pair, member, convert):
    coffee, airline, _, _ = coffee_and_airline
    await open_pair(airline, coffee)
    await member(airline, "alice-air", 1000)
    ids = [(await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 10 + i})).json()["id"]
           for i in range(3)]
    back = (await convert(airline, {"member": "alice-air", "to_brand": coffee.code, "amount": 100})).json()
    assert back["status"] == "committed", back
    page = (await client.get("/v1/conversions?limit=2", headers=coffee.headers)).json()
    assert [c["id"] for c in page["data"]] == [back["id"], ids[2]] and page["next_cursor"]
    rest = (await client.get(f"/v1/conversions?limit=2&cursor={page['next_cursor']}", headers=coffee.headers)).json()
    assert [c["id"] for c in rest["data"]] == [ids[1], ids[0]] and rest["next_cursor"] is None
    sources = (await client.get("/v1/conversions?role=target", headers=coffee.headers)).json()["data"]
    assert [(c["id"], c["role"], c["member"]) for c in sources] == [(back["id"], "target", "alice")]
    assert_problem(await client.get("/v1/conversions?status=done", headers=coffee.headers), 422, "validation_error")


async def test_positions_for_the_operator(coffee_and_airline, convert, admin):
    coffee, airline, _, _ = coffee_and_airline
    await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 1000})
    await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 500, "commit": False})
    coffee_position = (await admin("GET", f"/v1/admin/exchange/participants/{coffee.id}"))["position"]
    airline_position = (await admin("GET", f"/v1/admin/exchange/participants/{airline.id}"))["position"]
    assert {k: Decimal(v) for k, v in coffee_position.items() if k in ("reserved", "debits", "credits", "fees",
                                                                        "net_debit")} == {
        "reserved": 50, "debits": 100, "credits": 0, "fees": 1, "net_debit": 150}
    assert (Decimal(airline_position["credits"]), Decimal(airline_position["net_debit"])) == (99, -99)
    assert coffee_position["window_id"] == airline_position["window_id"]


async def test_the_events_become_webhook_deliveries_to_each_brand(client, coffee_and_airline, convert, relay):
    coffee, airline, _, _ = coffee_and_airline
    endpoints = {}
    for brand in (coffee, airline):
        created = await client.post("/v1/webhook-endpoints", headers=brand.headers, json={
            "url": "https://hooks.example/alliance", "event_types": ["conversion.committed"]})
        assert created.status_code == 201, created.text
        endpoints[brand.code] = created.json()["id"]
    converted = (await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 100})).json()
    await relay()
    for brand, member in ((coffee, "alice"), (airline, "alice-air")):
        deliveries = (await client.get(f"/v1/webhook-endpoints/{endpoints[brand.code]}/deliveries",
                                       headers=brand.headers)).json()["data"]
        assert [(d["event_type"], d["payload"]["data"]["conversion_id"], d["payload"]["data"]["member"])
                for d in deliveries] == [("conversion.committed", converted["id"], member)]
