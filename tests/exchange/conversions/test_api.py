"""Conversions over HTTP: at once, reserved then committed or aborted, with the price snapshotted, both brands'
ledgers moved by balanced entries and both brands told."""

from __future__ import annotations

from decimal import Decimal

from tests.api import assert_problem


async def balance(client, brand, member) -> dict:
    response = await client.get(f"/v1/members/{member}/balance", headers=brand.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_convert_at_once(client, coffee_and_airline, convert):
    coffee, airline, card, identity = coffee_and_airline
    response = await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 1000})
    assert response.status_code == 201, response.text
    conversion = response.json()
    # 1% fee on 1000 beans is 10; 990 beans at 2 miles a bean is 1980 miles.
    assert (conversion["status"], conversion["role"], conversion["member"]) == ("committed", "source", "alice")
    assert (conversion["source_amount"], conversion["fee_amount"], conversion["target_amount"]) == (1000, 10, 1980)
    assert (Decimal(conversion["rate"]), Decimal(conversion["gross_value"]), Decimal(conversion["fee_value"]),
            Decimal(conversion["net_value"])) == (2, Decimal("100"), Decimal("1"), Decimal("99"))
    assert conversion["counterparty_identity"] == identity
    assert conversion["countersignature"]
    assert (await balance(client, coffee, "alice"))["balance"] == 9000
    assert (await balance(client, airline, "alice-air"))["balance"] == 1980
    # The target brand reads it too, about its own member.
    seen = await client.get(f"/v1/conversions/{conversion['id']}", headers=airline.headers)
    assert seen.status_code == 200, seen.text
    assert (seen.json()["role"], seen.json()["member"], seen.json()["entry_id"]) == (
        "target", "alice-air", seen.json()["entry_id"])
    assert seen.json()["countersignature"] == conversion["countersignature"]


async def test_reserve_then_commit(client, coffee_and_airline, convert, resolve):
    coffee, airline, _, _ = coffee_and_airline
    reserved = await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 500, "commit": False})
    assert reserved.status_code == 201, reserved.text
    assert reserved.json()["status"] == "reserved"
    assert (await balance(client, coffee, "alice"))["available"] == 9500
    committed = await resolve(coffee, reserved.json()["id"])
    assert committed.status_code == 200, committed.text
    assert committed.json()["status"] == "committed"
    assert (await balance(client, coffee, "alice"))["balance"] == 9500
    assert (await balance(client, airline, "alice-air"))["balance"] == 990


async def test_reserve_then_abort(client, coffee_and_airline, convert, resolve):
    coffee, airline, _, _ = coffee_and_airline
    reserved = await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 500, "commit": False})
    aborted = await resolve(coffee, reserved.json()["id"], abort=True, body={"reason": "changed_mind"})
    assert aborted.status_code == 200, aborted.text
    assert (aborted.json()["status"], aborted.json()["abort_reason"]) == ("aborted", "changed_mind")
    assert (await balance(client, coffee, "alice"))["available"] == 10_000
    assert_problem(await resolve(coffee, reserved.json()["id"]), 409, "conversion_not_reserved")
