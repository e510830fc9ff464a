"""Rate cards and the price list: versions per pair, announced ahead, never in the past; an explicit rate may not
give more value than it takes; brands see the pairs they are part of."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api import assert_problem, bearer


async def test_versions_take_effect_in_turn(client, exchange_brand, open_pair, admin):
    coffee, airline = await exchange_brand(point_value="0.10"), await exchange_brand(point_value="0.05")
    first = await open_pair(coffee, airline, fee_bps=100)
    assert (first["version"], first["rate"], first["status"]) == (1, None, "in_force")
    ahead = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    second = await admin("POST", "/v1/admin/exchange/rate-cards", {
        "source_tenant_id": coffee.id, "target_tenant_id": airline.id, "rate": "1.5", "effective_at": ahead,
        "member_daily_limit": 5000}, status=201)
    assert (second["version"], second["rate"], second["status"]) == (2, "1.5", "scheduled")
    third = await admin("POST", "/v1/admin/exchange/rate-cards", {
        "source_tenant_id": coffee.id, "target_tenant_id": airline.id, "fee_bps": 50}, status=201)
    assert (third["version"], third["status"]) == (3, "in_force")
    cards = await admin("GET", f"/v1/admin/exchange/rate-cards?source_tenant_id={coffee.id}")
    assert [(c["version"], c["status"]) for c in cards] == [(1, "superseded"), (2, "scheduled"), (3, "in_force")]
    # Quotes use the card in force now.
    quote = (await client.post("/v1/exchange/quotes", json={"to_brand": airline.code, "amount": 1000},
                               headers=coffee.headers)).json()
    assert (quote["rate_card_version"], quote["fee_amount"], quote["target_amount"]) == (3, 5, 1990)
    # The price list: the brand's pairs, either direction, with the card in force and those announced.
    prices = (await client.get("/v1/exchange/rates", headers=airline.headers)).json()
    assert [(p["source_brand"], p["target_brand"], p["in_force"]["version"], [c["version"] for c in p["scheduled"]])
            for p in prices] == [(coffee.code, airline.code, 3, [2])]


async def test_what_a_card_may_not_be(exchange_brand, open_pair, admin):
    coffee, airline = await exchange_brand(point_value="0.10"), await exchange_brand(point_value="0.05")
    await open_pair(coffee, airline)
    pair = {"source_tenant_id": coffee.id, "target_tenant_id": airline.id}
    # 3 miles a bean would be 0.15 CNY of miles for 0.10 CNY of beans.
    refused = await admin("POST", "/v1/admin/exchange/rate-cards", {**pair, "rate": "3"}, status=422)
    assert (refused["code"], refused["max_rate"]) == ("rate_exceeds_point_values", "2")
    assert (await admin("POST", "/v1/admin/exchange/rate-cards", {**pair, "rate": "2"}, status=201))["rate"] == "2"
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert (await admin("POST", "/v1/admin/exchange/rate-cards", {**pair, "effective_at": past},
                        status=422))["code"] == "validation_error"
    moments_ago = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    assert (await admin("POST", "/v1/admin/exchange/rate-cards", {**pair, "effective_at": moments_ago},
                        status=422))["code"] == "rate_card_before_card_in_force"
    ahead = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    await admin("POST", "/v1/admin/exchange/rate-cards", {**pair, "effective_at": ahead}, status=201)
    assert (await admin("POST", "/v1/admin/exchange/rate-cards", {**pair, "effective_at": ahead},
                        status=409))["code"] == "rate_card_effective_at_taken"
    for bad in ({"fee_bps": 10_000}, {"rate": "0"}, {"rate": "-1"}, {"rate": "1.0000000000001"},
                {"min_amount": 10, "max_amount": 5}, {"quote_ttl_seconds": 1}, {"rate": "NaN"}):
        assert (await admin("POST", "/v1/admin/exchange/rate-cards", {**pair, **bad},
                            status=422))["code"] == "validation_error", bad
    assert (await admin("POST", "/v1/admin/exchange/rate-cards", {"source_tenant_id": airline.id,
                                                                   "target_tenant_id": coffee.id},
                        status=404))["code"] == "pair_not_found"


async def test_brands_quote_only_their_own_pairs(client, coffee_and_airline, exchange_brand, operator_key):
    coffee, airline, _, _ = coffee_and_airline
    assert_problem(await client.post("/v1/exchange/quotes", json={"to_brand": "nope", "amount": 10},
                                     headers=coffee.headers), 404, "brand_not_found")
    assert_problem(await client.post("/v1/exchange/quotes", json={"to_brand": airline.code, "amount": 0},
                                     headers=coffee.headers), 422, "validation_error")
    assert_problem(await client.post("/v1/exchange/quotes", json={"to_brand": airline.code, "amount": 10},
                                     headers=bearer(operator_key)), 403, "forbidden")
    outsider = await exchange_brand()
    assert (await client.get("/v1/exchange/rates", headers=outsider.headers)).json() == []
