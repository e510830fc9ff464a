"""Tenant isolation: walks every route of the API with brand A's key and brand B's ids. Nothing of B is
visible to A or changeable by A: every answer is 404 (no leak of existence), and B's books are unchanged.
New routes are walked automatically; a route this test does not know how to call fails it."""

import json

from alliance_sdk import signing
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
    ("POST", "/v1/members/{external_id:str}/link-codes"): None,
    ("DELETE", "/v1/members/{external_id:str}/alliance-link"): None,
    # A code is a member's consent, so whoever holds one may redeem it; a made-up one finds nothing.
    ("POST", "/v1/alliance-links"): {"code": "ABCD-EFGH-JKLM", "member": "a-member"},
    # Filled in below: A disputes B's window, naming B's counterparty (A has no such line).
    ("POST", "/v1/settlement/disputes"): {"reason": "mine now"},
    ("POST", "/v1/conversions/{conversion_id:int}/commit"): {},
    ("POST", "/v1/conversions/{conversion_id:int}/abort"): {},
}
# Routes that take A's signature: signed with A's own key, so the refusal is about B's data, not the signature.
SIGNED = {("POST", "/v1/conversions/{conversion_id:int}/commit"), ("POST", "/v1/conversions/{conversion_id:int}/abort")}
# Batch routes answer 200 with an outcome per item: every item addressing B's member is refused as not found.
BATCHES = {("POST", "/v1/bulk/operations")}
# Upsert addresses the caller's own namespace: B's external id there makes an unrelated member of A. So do
# registering and listing webhook endpoints and signing keys (B's stay out of A's lists: the snapshot checks B's).
# So do the brand's own view of itself, its price list, quotes and conversions it makes (checked below: B's
# conversion is not in A's list).
OWN_NAMESPACE = {("POST", "/v1/members"), ("POST", "/v1/webhook-endpoints"), ("GET", "/v1/webhook-endpoints"),
                 ("POST", "/v1/signing-keys"), ("GET", "/v1/signing-keys"), ("GET", "/v1/brand"),
                 ("GET", "/v1/exchange/rates"), ("POST", "/v1/exchange/quotes"), ("POST", "/v1/conversions"),
                 ("GET", "/v1/conversions"), ("GET", "/v1/settlement/statements"), ("GET", "/v1/settlement/disputes")}


def api_routes(app):
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler) and route.path.startswith("/v1"):
                for method in handler.http_methods - {"OPTIONS", "HEAD"}:  # litestar's automatic ones
                    yield method, route.path, handler


async def snapshot(client, brand_b, conversion_id):
    balance = (await client.get("/v1/members/b-member/balance", headers=brand_b)).json()
    member = (await client.get("/v1/members/b-member", headers=brand_b)).json()
    endpoints = (await client.get("/v1/webhook-endpoints", headers=brand_b)).json()
    signing_keys = (await client.get("/v1/signing-keys", headers=brand_b)).json()
    conversion = (await client.get(f"/v1/conversions/{conversion_id}", headers=brand_b)).json()
    link = (await client.get("/v1/members/b-member/alliance-link", headers=brand_b)).json()
    statements = (await client.get("/v1/settlement/statements", headers=brand_b)).json()
    disputes = (await client.get("/v1/settlement/disputes", headers=brand_b)).json()
    return balance, member, endpoints, signing_keys, conversion, link, statements, disputes


async def exchange_participant(client, operator_key, tenant, headers, kid: str) -> str:
    """Admits the brand to the exchange with a signing key; returns the private key."""
    admitted = await client.post("/v1/admin/exchange/participants", headers=bearer(operator_key),
                                 json={"tenant_id": tenant["id"], "net_debit_cap": "100000"})
    assert admitted.status_code == 201, admitted.text
    private_key, public_jwk = signing.generate_signing_key()
    registered = await client.post("/v1/signing-keys", headers=headers, json={"kid": kid, "public_jwk": public_jwk})
    assert registered.status_code == 201, registered.text
    return private_key


def signed(tenant, private_key, kid, method, path, body) -> tuple[bytes, dict[str, str]]:
    content = b"{}" if body is None else json.dumps(body).encode()
    return content, {signing.SIGNATURE_HEADER: signing.sign_request(
        private_key, kid=kid, tenant=tenant["id"], method=method, path=path, body=content),
        "content-type": "application/json"}


async def b_converts_to_c(client, onboard, operator_key, tenant_b, brand_b, key_b) -> tuple[int, dict]:
    """B's member converts into brand C's (a third brand, linked): a conversion A is no party to."""
    op = bearer(operator_key)
    tenant_c, brand_c = await onboard()
    await exchange_participant(client, operator_key, tenant_c, brand_c, "c-key")
    await client.post("/v1/admin/exchange/pairs", headers=op,
                      json={"source_tenant_id": tenant_b["id"], "target_tenant_id": tenant_c["id"]})
    await client.post("/v1/admin/exchange/rate-cards", headers=op,
                      json={"source_tenant_id": tenant_b["id"], "target_tenant_id": tenant_c["id"]})
    await client.post("/v1/members", json={"external_id": "c-member"}, headers=brand_c)
    code = (await client.post("/v1/members/b-member/link-codes", headers=brand_b)).json()["code"]
    linked = await client.post("/v1/alliance-links", json={"code": code, "member": "c-member"}, headers=brand_c)
    assert linked.status_code == 201, linked.text
    body = {"member": "b-member", "to_brand": tenant_c["code"], "amount": 20}
    content, headers = signed(tenant_b, key_b, "b-key", "POST", "/v1/conversions", body)
    converted = await client.post("/v1/conversions", content=content, headers=brand_b | idem() | headers)
    assert converted.status_code == 201, converted.text
    return converted.json()["id"], tenant_c


async def settle_the_day(client, operator_key, brand_b, tenant_c) -> tuple[int, int]:
    """The window of B's conversion closed, computed and stated, and B disputing its line with C."""
    op = bearer(operator_key)
    window = (await client.post("/v1/admin/settlement/windows/close", json={}, headers=op)).json()["id"]
    assert (await client.post(f"/v1/admin/settlement/windows/{window}/compute", headers=op)).status_code == 200
    assert (await client.post(f"/v1/admin/settlement/windows/{window}/statements", headers=op)).status_code == 200
    dispute = await client.post("/v1/settlement/disputes", headers=brand_b, json={
        "window_id": window, "counterparty": tenant_c["code"], "reason": "checking"})
    assert dispute.status_code == 201, dispute.text
    return window, dispute.json()["id"]


async def test_brand_a_cannot_see_or_move_anything_of_brand_b(client, db, onboard, operator_key):
    tenant_a, brand_a = await onboard()
    tenant_b, brand_b = await onboard()
    key_a = await exchange_participant(client, operator_key, tenant_a, brand_a, "a-key")
    key_b = await exchange_participant(client, operator_key, tenant_b, brand_b, "b-key")
    await client.post("/v1/members", json={"external_id": "a-member"}, headers=brand_a)
    await client.post("/v1/members", json={"external_id": "b-member", "phone": "+1 555 0100"}, headers=brand_b)
    endpoint = (await client.post("/v1/webhook-endpoints", json={"url": "https://b.example/hooks"},
                                  headers=brand_b)).json()
    credit = (await client.post("/v1/members/b-member/credits", json={"amount": 100, "reason": "seed"},
                                headers=brand_b | idem())).json()
    hold = (await client.post("/v1/members/b-member/holds", json={"amount": 10, "reason": "seed"},
                              headers=brand_b | idem())).json()
    conversion_id, tenant_c = await b_converts_to_c(client, onboard, operator_key, tenant_b, brand_b, key_b)
    window_id, dispute_id = await settle_the_day(client, operator_key, brand_b, tenant_c)
    await run_in_transaction(db.sessions, relay_outbox)  # B's events become deliveries to B's endpoint
    delivery = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=brand_b)).json()
    ids = {"external_id": "b-member", "hold_id": hold["id"], "entry_id": credit["entry"]["id"],
           "endpoint_id": endpoint["id"], "delivery_id": delivery["data"][0]["id"], "kid": "b-key",
           "conversion_id": conversion_id, "window_id": window_id, "kind": "csv", "dispute_id": dispute_id}
    before = await snapshot(client, brand_b, conversion_id)

    walked = []
    for method, path, _ in api_routes(client.app):
        if path.startswith("/v1/admin"):
            url = path.replace("{key_id:str}", "x").replace("{window_id:int}", str(window_id))
            url = url.replace("{dispute_id:int}", str(dispute_id))
            for name in ("tenant_id", "source_tenant_id", "target_tenant_id"):
                url = url.replace(f"{{{name}:int}}", str(tenant_b["id"]))
            response = await client.request(method, url, headers=brand_a | idem(), json={})
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
        if (method, path) == ("POST", "/v1/settlement/disputes"):
            body = {**body, "window_id": window_id, "counterparty": tenant_c["code"]}
        assert method == "GET" or (method, path) in BODIES, f"the isolation walk needs a body for {method} {path}"
        if (method, path) in SIGNED:
            content, signature = signed(tenant_a, key_a, "a-key", method, url, body)
            response = await client.request(method, url, headers=brand_a | idem() | signature, content=content)
        else:
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

    assert len(walked) >= 20
    after = await snapshot(client, brand_b, conversion_id)
    assert after == before and after[3][0]["status"] == "active"  # B's signing key is still unrevoked
    assert after[4]["status"] == "committed" and after[5]["member"] == "b-member"
    # A's own lists hold nothing of B's.
    assert (await client.get("/v1/conversions", headers=brand_a)).json()["data"] == []


async def test_keys_stay_on_their_side(client, onboard, operator_key):
    tenant, brand = await onboard()
    assert (await client.get("/v1/admin/tenants", headers=brand)).status_code == 403
    assert (await client.post(f"/v1/admin/tenants/{tenant['id']}/keys", json={"name": "x"},
                              headers=brand)).status_code == 403
    assert (await client.get("/v1/members/x", headers=bearer(operator_key))).status_code == 403
    assert (await client.get("/v1/members/x")).status_code == 401
    assert (await client.get("/v1/members/x", headers=bearer("alk_aaaaaaaaaaaa_" + "x" * 43))).status_code == 401
