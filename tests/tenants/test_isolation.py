"""Tenant isolation: walks every route of the API with brand A's key and brand B's ids. Nothing of B is
visible to A or changeable by A: every answer is 404 (no leak of existence), and B's books are unchanged.
New routes are walked automatically; a route this test does not know how to call fails it."""

from litestar.handlers import HTTPRouteHandler

from alliance.db import run_in_transaction
from alliance.worker.outbox import relay_outbox
from tests.api import bearer, idem

# A valid body for each brand route that takes one, so the call reaches the tenant check.
BODIES = {
    ("PATCH", "/v1/members/{external_id:str}"): {"nickname": "pwned", "status": "frozen"},
    ("POST", "/v1/members/{external_id:str}/credits"): {"amount": 5, "reason": "x"},
    ("POST", "/v1/members/{external_id:str}/debits"): {"amount": 5, "reason": "x"},
    ("POST", "/v1/members/{external_id:str}/gifts"): {"to": "a-member", "amount": 5},
    ("POST", "/v1/members/{external_id:str}/holds"): {"amount": 5, "reason": "x"},
    ("POST", "/v1/holds/{hold_id:int}/capture"): {},
    ("POST", "/v1/holds/{hold_id:int}/release"): None,
    ("POST", "/v1/entries/{entry_id:int}/reversal"): {"reason": "x"},
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id:int}"): {"url": "https://evil.example/", "status": "disabled"},
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id:int}"): None,
    ("POST", "/v1/webhook-deliveries/{delivery_id:int}/redeliver"): None,
    ("POST", "/v1/signing-keys/{kid:str}/revoke"): None,
    ("POST", "/v1/bulk/operations"): {"items": [
        {"kind": kind, "member": "b-member", "amount": 5, "reason": "x", "idempotency_key": f"iso-{kind}"}
        for kind in ("credit", "debit")]},
}
# Batch routes answer 200 with an outcome per item: every item addressing B's member is refused as not found.
BATCHES = {("POST", "/v1/bulk/operations")}
# Upsert addresses the caller's own namespace: B's external id there makes an unrelated member of A. So do
# registering and listing webhook endpoints and signing keys (B's stay out of A's lists: the snapshot checks B's).
OWN_NAMESPACE = {("POST", "/v1/members"), ("POST", "/v1/webhook-endpoints"), ("GET", "/v1/webhook-endpoints"),
                 ("POST", "/v1/signing-keys"), ("GET", "/v1/signing-keys")}


def api_routes(app):
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler) and route.path.startswith("/v1"):
                for method in handler.http_methods - {"OPTIONS", "HEAD"}:  # litestar's automatic ones
                    yield method, route.path, handler


async def snapshot(client, brand_b):
    balance = (await client.get("/v1/members/b-member/balance", headers=brand_b)).json()
    member = (await client.get("/v1/members/b-member", headers=brand_b)).json()
    endpoints = (await client.get("/v1/webhook-endpoints", headers=brand_b)).json()
    signing_keys = (await client.get("/v1/signing-keys", headers=brand_b)).json()
    return balance, member, endpoints, signing_keys


async def test_brand_a_cannot_see_or_move_anything_of_brand_b(client, db, onboard, operator_key):
    tenant_a, brand_a = await onboard()
    tenant_b, brand_b = await onboard()
    await client.post("/v1/members", json={"external_id": "a-member"}, headers=brand_a)
    await client.post("/v1/members", json={"external_id": "b-member", "phone": "+1 555 0100"}, headers=brand_b)
    endpoint = (await client.post("/v1/webhook-endpoints", json={"url": "https://b.example/hooks"},
                                  headers=brand_b)).json()
    credit = (await client.post("/v1/members/b-member/credits", json={"amount": 100, "reason": "seed"},
                                headers=brand_b | idem())).json()
    hold = (await client.post("/v1/members/b-member/holds", json={"amount": 10, "reason": "seed"},
                              headers=brand_b | idem())).json()
    signing_key = await client.post("/v1/signing-keys", headers=brand_b, json={
        "kid": "b-key", "public_jwk": {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}})
    assert signing_key.status_code == 201, signing_key.text
    await run_in_transaction(db.sessions, relay_outbox)  # B's events become deliveries to B's endpoint
    delivery = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=brand_b)).json()
    ids = {"external_id": "b-member", "hold_id": hold["id"], "entry_id": credit["entry"]["id"],
           "endpoint_id": endpoint["id"], "delivery_id": delivery["data"][0]["id"], "kid": "b-key"}
    before = await snapshot(client, brand_b)

    walked = []
    for method, path, _ in api_routes(client.app):
        if path.startswith("/v1/admin"):
            response = await client.request(method, path.replace("{tenant_id:int}", str(tenant_b["id"]))
                                            .replace("{key_id:str}", "x"), headers=brand_a | idem(), json={})
            assert response.status_code == 403, (method, path, response.text)
            walked.append((method, path))
            continue
        if (method, path) in OWN_NAMESPACE:
            continue
        url = path
        for name, value in ids.items():
            url = url.replace(f"{{{name}:str}}", str(value)).replace(f"{{{name}:int}}", str(value))
        assert "{" not in url, f"the isolation walk does not know how to address {path}"
        body = BODIES.get((method, path)) if method != "GET" else None
        assert method == "GET" or (method, path) in BODIES, f"the isolation walk needs a body for {method} {path}"
        response = await client.request(method, url, headers=brand_a | idem(),
                                        **({"json": body} if body is not None else {}))
        if (method, path) in BATCHES:
            assert response.status_code == 200, (method, path, response.status_code, response.text)
            assert {r["error"]["code"] for r in response.json()["results"]} == {"member_not_found"}
        else:
            assert response.status_code == 404, (method, path, response.status_code, response.text)
            assert "b-member" not in response.text or response.json()["code"] == "member_not_found"
        assert "555" not in response.text
        walked.append((method, path))

    assert len(walked) >= 14
    after = await snapshot(client, brand_b)
    assert after == before and after[3][0]["status"] == "active"  # B's signing key is still unrevoked


async def test_keys_stay_on_their_side(client, onboard, operator_key):
    tenant, brand = await onboard()
    assert (await client.get("/v1/admin/tenants", headers=brand)).status_code == 403
    assert (await client.post(f"/v1/admin/tenants/{tenant['id']}/keys", json={"name": "x"},
                              headers=brand)).status_code == 403
    assert (await client.get("/v1/members/x", headers=bearer(operator_key))).status_code == 403
    assert (await client.get("/v1/members/x")).status_code == 401
    assert (await client.get("/v1/members/x", headers=bearer("alk_aaaaaaaaaaaa_" + "x" * 43))).status_code == 401
