"""The brand's webhook API: endpoints and their secret, validation, the delivery log's pages, and another
brand seeing nothing of it."""

import pytest

from tests.api import assert_problem, idem


async def test_an_endpoint_is_registered_read_changed_and_deleted(client, pool, onboard, register):
    _, headers = await onboard()
    created = await register(headers, "https://hooks.example.com/alliance?x=1", description="orders",
                             event_types=["points.debited", "points.credited", "points.debited"])
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["points.credited", "points.debited"]
    assert (created["status"], created["disabled_reason"], created["consecutive_failures"]) == ("active", None, 0)
    # The secret is shown once and stored only encrypted.
    one = await client.get(f"/v1/webhook-endpoints/{created['id']}", headers=headers)
    assert one.status_code == 200 and "secret" not in one.json()
    assert "secret" not in (await client.get("/v1/webhook-endpoints", headers=headers)).json()[0]
    stored = await pool.fetchval("SELECT secret_enc FROM webhook_endpoints WHERE id = $1", created["id"])
    assert created["secret"].encode() not in stored and created["secret"][6:].encode() not in stored

    changed = await client.patch(f"/v1/webhook-endpoints/{created['id']}", headers=headers,
                                 json={"url": "http://hooks.example.com/v2", "event_types": [], "description": None})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["url"], changed.json()["event_types"], changed.json()["description"]) == (
        "http://hooks.example.com/v2", [], None)
    disabled = await client.patch(f"/v1/webhook-endpoints/{created['id']}", json={"status": "disabled"},
                                  headers=headers)
    assert (disabled.json()["status"], disabled.json()["disabled_reason"]) == ("disabled", "disabled by the brand")

    deleted = await client.delete(f"/v1/webhook-endpoints/{created['id']}", headers=headers)
    assert deleted.status_code == 204
    assert_problem(await client.get(f"/v1/webhook-endpoints/{created['id']}", headers=headers),
                   404, "webhook_endpoint_not_found")
    assert (await client.get("/v1/webhook-endpoints", headers=headers)).json() == []


@pytest.mark.parametrize("body", [
    {"url": "ftp://hooks.example.com/"},
    {"url": "https://"},
    {"url": "https://user:pass@hooks.example.com/"},
    {"url": "https://hooks.example.com:99999/"},
    {"url": "https://:443/"},
    {"url": "hooks.example.com"},
    {"url": "https://hooks.example.com/", "event_types": ["points.minted"]},
    {"url": "https://hooks.example.com/", "secret": "whsec_mine"},
])
async def test_bad_endpoints_are_refused(client, onboard, body):
    _, headers = await onboard()
    assert_problem(await client.post("/v1/webhook-endpoints", json=body, headers=headers), 422, "validation_error")


async def test_the_delivery_log_pages_newest_first(client, onboard, register, deliveries, relay):
    _, headers = await onboard()
    endpoint = await register(headers, "http://127.0.0.1:9/hooks")
    await client.post("/v1/members", json={"external_id": "alice"}, headers=headers)
    for amount in (1, 2, 3):
        await client.post("/v1/members/alice/credits", json={"amount": amount, "reason": "x"},
                          headers=headers | idem())
    await relay()

    url = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"
    first = (await client.get(url, params={"limit": 2}, headers=headers)).json()
    assert [d["payload"]["data"]["amount"] for d in first["data"]] == [3, 2]
    second = (await client.get(url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers)).json()
    assert [d["payload"]["data"]["amount"] for d in second["data"]] == [1]
    assert second["next_cursor"] is None
    assert await deliveries(headers, endpoint["id"], status="succeeded") == []


async def test_another_brand_sees_and_redelivers_nothing(client, onboard, register, deliveries, relay):
    _, brand_a = await onboard()
    _, brand_b = await onboard()
    endpoint = await register(brand_b, "http://127.0.0.1:9/hooks")
    await client.post("/v1/members", json={"external_id": "bob"}, headers=brand_b)
    await client.post("/v1/members/bob/credits", json={"amount": 5, "reason": "x"}, headers=brand_b | idem())
    await relay()
    [delivery] = await deliveries(brand_b, endpoint["id"])

    assert (await client.get("/v1/webhook-endpoints", headers=brand_a)).json() == []
    for response in (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=brand_a),
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=brand_a),
        await client.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"url": "https://evil.example/"},
                           headers=brand_a),
        await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=brand_a),
    ):
        assert_problem(response, 404, "webhook_endpoint_not_found")
    assert_problem(await client.post(f"/v1/webhook-deliveries/{delivery['id']}/redeliver", headers=brand_a),
                   404, "webhook_delivery_not_found")
    assert await deliveries(brand_b, endpoint["id"]) == [delivery]
    assert (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=brand_b)).json()["url"] == (
        "http://127.0.0.1:9/hooks")
