"""A brand operates entirely over HTTP: members, every value operation, reads, and their errors."""

import pytest

from tests.api import assert_problem, bearer, idem


async def test_onboarding_issues_a_prefixed_key_shown_once(client, operator_key, onboard):
    tenant, brand = await onboard()
    assert brand["authorization"].startswith("Bearer alk_")
    listed = await client.get(f"/v1/admin/tenants/{tenant['id']}/keys", headers=bearer(operator_key))
    assert listed.status_code == 200 and "secret" not in listed.json()[0]


async def test_a_brand_earns_spends_gifts_holds_and_reverses(client, onboard):
    _, brand = await onboard()
    for member in ("alice", "bob"):
        created = await client.post("/v1/members", json={"external_id": member}, headers=brand)
        assert created.status_code == 201, created.text

    credit = await client.post("/v1/members/alice/credits", json={"amount": 500, "reason": "purchase"},
                               headers=brand | idem())
    assert credit.status_code == 201, credit.text
    assert credit.json()["balances"] == [{"member": "alice", "balance": 500}]
    assert [p["account"] for p in credit.json()["entry"]["postings"]] == ["system:issuance", "member:alice"]

    debit = await client.post("/v1/members/alice/debits", json={"amount": 100, "reason": "coffee"},
                              headers=brand | idem())
    assert debit.json()["balances"] == [{"member": "alice", "balance": 400}]

    gift = await client.post("/v1/members/alice/gifts", json={"to": "bob", "amount": 150}, headers=brand | idem())
    assert sorted((b["member"], b["balance"]) for b in gift.json()["balances"]) == [("alice", 250), ("bob", 150)]

    hold = await client.post("/v1/members/alice/holds", json={"amount": 200, "reason": "order"},
                             headers=brand | idem())
    assert hold.status_code == 201 and hold.json()["status"] == "pending"
    balance = (await client.get("/v1/members/alice/balance", headers=brand)).json()
    assert (balance["balance"], balance["held"], balance["available"]) == (250, 200, 50)

    capture = await client.post(f"/v1/holds/{hold.json()['id']}/capture", json={"amount": 120},
                                headers=brand | idem())
    assert capture.json()["balances"] == [{"member": "alice", "balance": 130}]
    balance = (await client.get("/v1/members/alice/balance", headers=brand)).json()
    assert (balance["balance"], balance["held"], balance["available"]) == (130, 0, 130)

    reversal = await client.post(f"/v1/entries/{debit.json()['entry']['id']}/reversal", json={"reason": "refund"},
                                 headers=brand | idem())
    assert reversal.json()["balances"] == [{"member": "alice", "balance": 230}]
    assert reversal.json()["entry"]["reverses_entry_id"] == debit.json()["entry"]["id"]

    entry = await client.get(f"/v1/entries/{gift.json()['entry']['id']}", headers=brand)
    assert entry.json()["kind"] == "gift"

    history = (await client.get("/v1/members/alice/history?limit=2", headers=brand)).json()
    assert [item["kind"] for item in history["data"]] == ["reversal", "capture"]
    rest = (await client.get(f"/v1/members/alice/history?cursor={history['next_cursor']}", headers=brand)).json()
    assert [item["kind"] for item in rest["data"]] == ["gift", "debit", "credit"] and rest["next_cursor"] is None
    credits = (await client.get("/v1/members/alice/history?kind=credit", headers=brand)).json()
    assert [item["amount"] for item in credits["data"]] == [500]


async def test_release_gives_held_points_back(client, onboard):
    _, brand = await onboard()
    await client.post("/v1/members", json={"external_id": "carol"}, headers=brand)
    await client.post("/v1/members/carol/credits", json={"amount": 50, "reason": "signup"}, headers=brand | idem())
    hold = (await client.post("/v1/members/carol/holds", json={"amount": 30, "reason": "order"},
                              headers=brand | idem())).json()
    released = await client.post(f"/v1/holds/{hold['id']}/release", headers=brand | idem())
    assert released.status_code == 200 and released.json()["status"] == "voided"
    assert (await client.get("/v1/members/carol/balance", headers=brand)).json()["available"] == 50


async def test_idempotency_over_http(client, onboard):
    _, brand = await onboard()
    await client.post("/v1/members", json={"external_id": "dave"}, headers=brand)
    key = idem()
    body = {"amount": 70, "reason": "purchase"}
    first = await client.post("/v1/members/dave/credits", json=body, headers=brand | key)
    again = await client.post("/v1/members/dave/credits", json=body, headers=brand | key)
    assert again.json()["entry"] == first.json()["entry"]
    assert again.json()["replayed"] and not first.json()["replayed"]
    assert (await client.get("/v1/members/dave/balance", headers=brand)).json()["balance"] == 70
    reused = await client.post("/v1/members/dave/credits", json={**body, "amount": 71}, headers=brand | key)
    assert_problem(reused, 409, "idempotency_key_reused")
    missing = await client.post("/v1/members/dave/credits", json=body, headers=brand)
    assert_problem(missing, 400, "idempotency_key_required")


async def test_default_expiry_policy_and_expiring_soon(client, onboard):
    _, brand = await onboard(expiry_days=10)
    await client.post("/v1/members", json={"external_id": "erin"}, headers=brand)
    key = idem()
    for _ in range(2):  # a retry hashes the request as sent, not the deadline computed from the clock
        credit = await client.post("/v1/members/erin/credits", json={"amount": 40, "reason": "purchase"},
                                   headers=brand | key)
        assert credit.status_code == 201, credit.text
    balance = (await client.get("/v1/members/erin/balance?expiring_within_days=30", headers=brand)).json()
    assert balance["balance"] == 40 and sum(e["amount"] for e in balance["expiring"]) == 40
    assert (await client.get("/v1/members/erin/balance?expiring_within_days=5", headers=brand)).json()["expiring"] == []


async def test_insufficient_points_and_frozen_members_change_nothing(client, onboard):
    _, brand = await onboard()
    await client.post("/v1/members", json={"external_id": "frank"}, headers=brand)
    await client.post("/v1/members/frank/credits", json={"amount": 10, "reason": "signup"}, headers=brand | idem())
    refused = await client.post("/v1/members/frank/debits", json={"amount": 11, "reason": "coffee"},
                                headers=brand | idem())
    body = assert_problem(refused, 422, "insufficient_points")
    assert (body["available"], body["requested"]) == (10, 11)

    frozen = await client.patch("/v1/members/frank", json={"status": "frozen"}, headers=brand)
    assert frozen.json()["status"] == "frozen"
    for path, payload in (("credits", {"amount": 1, "reason": "x"}), ("debits", {"amount": 1, "reason": "x"}),
                          ("holds", {"amount": 1, "reason": "x"})):
        assert_problem(await client.post(f"/v1/members/frank/{path}", json=payload, headers=brand | idem()),
                       409, "member_frozen")
    assert (await client.get("/v1/members/frank/balance", headers=brand)).json()["balance"] == 10


async def test_personal_data_is_encrypted_at_rest(client, onboard, pool):
    _, brand = await onboard()
    created = await client.post("/v1/members", headers=brand, json={
        "external_id": "grace", "nickname": "G", "phone": "+86 138 0000 1234", "address": "1 Bund Road, Shanghai"})
    assert created.json()["phone"] == "+86 138 0000 1234"
    row = await pool.fetchrow("SELECT phone_enc, address_enc FROM members WHERE external_id = 'grace'")
    assert b"138" not in row["phone_enc"] and b"Bund" not in row["address_enc"]
    fetched = (await client.get("/v1/members/grace", headers=brand)).json()
    assert fetched["address"] == "1 Bund Road, Shanghai"


async def test_upsert_updates_the_profile_of_an_existing_member(client, onboard):
    _, brand = await onboard()
    await client.post("/v1/members", json={"external_id": "heidi", "nickname": "H"}, headers=brand)
    again = await client.post("/v1/members", json={"external_id": "heidi", "birthday": "1990-05-17"}, headers=brand)
    assert again.status_code == 200
    assert (again.json()["nickname"], again.json()["birthday"]) == ("H", "1990-05-17")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/v1/members", {"external_id": ""}),
        ("post", "/v1/members", {"external_id": "ok", "phone": "call me"}),
        ("post", "/v1/members", {"external_id": "ok", "unknown": 1}),
        ("post", "/v1/members/ivan/credits", {"amount": 0, "reason": "x"}),
        ("post", "/v1/members/ivan/credits", {"amount": -5, "reason": "x"}),
        ("post", "/v1/members/ivan/credits", {"amount": 1.5, "reason": "x"}),
        ("post", "/v1/members/ivan/credits", {"amount": 10**13, "reason": "x"}),
        ("post", "/v1/members/ivan/credits", {"amount": 5, "reason": "Has Spaces"}),
        ("post", "/v1/members/ivan/holds", {"amount": 5, "reason": "x", "expires_in_seconds": 0}),
        ("post", "/v1/members/ivan/gifts", {"to": "ivan", "amount": 5}),
        ("get", "/v1/members/ivan/history?limit=0", None),
        ("get", "/v1/members/ivan/history?cursor=abc", None),
        ("post", "/v1/members/ivan/credits", {"amount": 5, "reason": "x", "expires_at": "2100-01-01T00:00:00"}),
        ("get", "/v1/members/ivan/balance?at=2026-01-01T00:00:00", None),
        ("post", "/v1/members/ivan/credits", {"amount": 5, "reason": "x", "metadata": {"a\u0000": ""}}),
        ("post", "/v1/members", {"external_id": "nul", "nickname": "a\u0000b"}),
        ("get", "/v1/members/ivan/history?since=2026-01-01T00:00:00", None),
    ],
)
async def test_bad_input_is_a_validation_problem_and_changes_nothing(client, onboard, method, path, body):
    _, brand = await onboard()
    await client.post("/v1/members", json={"external_id": "ivan"}, headers=brand)
    await client.post("/v1/members/ivan/credits", json={"amount": 5, "reason": "seed"}, headers=brand | idem())
    kwargs = {"headers": brand | idem()} | ({"json": body} if body is not None else {})
    response = await getattr(client, method)(path, **kwargs)
    assert response.status_code in (400, 422), response.text
    assert response.json()["code"] in ("validation_error", "bad_request")
    assert (await client.get("/v1/members/ivan/balance", headers=brand)).json()["balance"] == 5


async def test_operator_onboarding_errors(client, operator_key, onboard):
    tenant, _ = await onboard()
    assert_problem(await client.post("/v1/admin/tenants", headers=bearer(operator_key), json={
        "code": tenant["code"], "name": "Dup", "currency_code": "PTS", "point_value": "1"}), 409, "tenant_code_taken")
    assert_problem(await client.post("/v1/admin/tenants", headers=bearer(operator_key), json={
        "code": "neg", "name": "N", "currency_code": "PTS", "point_value": "-1"}), 422, "validation_error")
    assert_problem(await client.get("/v1/admin/tenants/999999999", headers=bearer(operator_key)),
                   404, "tenant_not_found")


async def test_rate_limit_answers_429_with_retry_after(client, onboard, monkeypatch):
    from alliance.settings import get_settings

    _, brand = await onboard()
    monkeypatch.setenv("ALLIANCE_RATE_LIMIT_PER_SECOND", "3")
    get_settings.cache_clear()
    statuses = [(await client.get("/v1/members/nobody", headers=brand)) for _ in range(8)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and limited[0].headers["retry-after"] == "1"
    assert_problem(limited[0], 429, "rate_limited")


async def test_revoked_keys_stop_working(client, operator_key, onboard):
    tenant, brand = await onboard()
    key_id = brand["authorization"].split("_")[1]
    assert (await client.get("/v1/members/x", headers=brand)).status_code == 404
    revoked = await client.post(f"/v1/admin/tenants/{tenant['id']}/keys/{key_id}/revoke", headers=bearer(operator_key))
    assert revoked.json()["revoked_at"] is not None
    assert_problem(await client.get("/v1/members/x", headers=brand), 401, "unauthorized")
