"""Alliance identities over HTTP: a link code issued by one brand and redeemed at another links one person's
memberships (with the person's consent, which the code carries); codes work once and expire; a brand sees which
brands an identity spans, never another brand's member ids; unlinking withdraws consent."""

from __future__ import annotations

from tests.api import assert_problem


async def issue(client, brand, member) -> dict:
    response = await client.post(f"/v1/members/{member}/link-codes", headers=brand.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def redeem(client, brand, code, member):
    return await client.post("/v1/alliance-links", json={"code": code, "member": member}, headers=brand.headers)


async def test_a_code_links_two_memberships_under_one_identity(client, exchange_brand, member):
    coffee, airline, grocer = [await exchange_brand() for _ in range(3)]
    await member(coffee, "alice")
    await member(airline, "a-123")
    await member(grocer, "shopper-9")
    code = await issue(client, coffee, "alice")
    assert len(code["code"]) == 14 and code["member"] == "alice"
    linked = await redeem(client, airline, code["code"].lower().replace("-", ""), "a-123")  # case, dashes: no matter
    assert linked.status_code == 201, linked.text
    identity = linked.json()["identity"]
    assert linked.json()["member"] == "a-123" and identity.startswith("idn_")
    assert sorted(linked.json()["brands"]) == sorted([coffee.code, airline.code])
    # A third brand joins the same identity (the code comes from a brand already linked).
    third = await redeem(client, grocer, (await issue(client, airline, "a-123"))["code"], "shopper-9")
    assert third.json()["identity"] == identity
    seen = (await client.get("/v1/members/alice/alliance-link", headers=coffee.headers)).json()
    assert (seen["identity"], sorted(seen["brands"])) == (identity, sorted([coffee.code, airline.code, grocer.code]))
    assert "a-123" not in str(seen) and "shopper-9" not in str(seen)  # never another brand's member ids


async def test_codes_are_single_use_short_lived_and_cross_brand(client, pool, exchange_brand, member):
    coffee, airline = await exchange_brand(), await exchange_brand()
    await member(coffee, "alice")
    await member(coffee, "alex")
    await member(airline, "a-1")
    await member(airline, "a-2")
    code = (await issue(client, coffee, "alice"))["code"]
    assert_problem(await redeem(client, coffee, code, "alex"), 422, "link_code_same_brand")
    assert (await redeem(client, airline, code, "a-1")).status_code == 201
    assert_problem(await redeem(client, airline, code, "a-2"), 409, "link_code_used")
    assert_problem(await redeem(client, airline, "ZZZZ-ZZZZ-ZZZZ", "a-2"), 404, "link_code_not_found")
    stale = (await issue(client, coffee, "alex"))["code"]
    await pool.execute("UPDATE alliance_link_codes SET expires_at = now() - interval '1 s'"
                       " WHERE tenant_id = $1 AND external_id = 'alex'", coffee.id)
    assert_problem(await redeem(client, airline, stale, "a-2"), 422, "link_code_expired")
    assert_problem(await redeem(client, airline, (await issue(client, coffee, "alex"))["code"], "nobody"), 404,
                   "member_not_found")
    assert_problem(await client.post("/v1/members/nobody/link-codes", headers=coffee.headers), 404,
                   "member_not_found")
    # One membership per brand per identity: alice's identity has a-1 at the airline already.
    again = (await issue(client, coffee, "alice"))["code"]
    assert_problem(await redeem(client, airline, again, "a-2"), 409, "identity_already_linked_at_brand")


async def test_two_identities_are_not_merged(client, exchange_brand, member, link):
    coffee, airline = await exchange_brand(), await exchange_brand()
    for brand, name in ((coffee, "c1"), (coffee, "c2"), (airline, "a1"), (airline, "a2")):
        await member(brand, name)
    await link(coffee, "c1", airline, "a1")
    await link(coffee, "c2", airline, "a2")
    code = (await issue(client, coffee, "c1"))["code"]
    assert_problem(await redeem(client, airline, code, "a2"), 409, "members_linked_to_other_identities")


async def test_unlinking_withdraws_the_membership(client, coffee_and_airline, convert):
    coffee, airline, _, identity = coffee_and_airline
    assert (await client.delete("/v1/members/alice-air/alliance-link", headers=airline.headers)).status_code == 204
    assert_problem(await client.get("/v1/members/alice-air/alliance-link", headers=airline.headers), 404,
                   "alliance_link_not_found")
    assert (await client.get("/v1/members/alice/alliance-link", headers=coffee.headers)).json()["brands"] == [
        coffee.code]
    # Nothing can be converted to the airline for this person now.
    assert_problem(await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 100}), 422,
                   "identity_not_linked_at_brand")
    assert_problem(await client.delete("/v1/members/alice-air/alliance-link", headers=airline.headers), 404,
                   "alliance_link_not_found")
