"""Tenant isolation: walks every route of the API with brand A's key and brand B's ids. Nothing of B is
visible to A or changeable by A: every answer is 404 (no leak of existence), and B's books are unchanged.
New routes are walked automatically; a route this test does not know how to call fails it."""

from litestar.handlers import HTTPRouteHandler

from tests.api import bearer, idem
from tests.exchange_fixtures import signed_request
from tests.settlement.helpers import close, compute

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


async def settle_the_day(admin, client, b, c) -> tuple[int, int]:
    """The window of B's conversion closed, computed and stated, and B disputing its line with C."""
    window = (await close(admin))["id"]
    await compute(admin, window)
    await admin("POST", f"/v1/admin/settlement/windows/{window}/statements")
    dispute = await client.post("/v1/settlement/disputes", headers=b.headers, json={
        "window_id": window, "counterparty": c.code, "reason": "checking"})
    assert dispute.status_code == 201, dispute.text
    return window, dispute.json()["id"]


async def test_brand_a_cannot_see_or_move_anything_of_brand_b(client, relay, admin, exchange_brand, open_pair, member,
                                                              link, convert):
    a, b = await exchange_brand(), await exchange_brand()
    brand_a, brand_b = a.headers, b.headers
    await member(a, "a-member")
    await client.post("/v1/members", json={"external_id": "b-member", "phone": "+1 555 0100"}, headers=brand_b)
    endpoint = (await client.post("/v1/webhook-endpoints", json={"url": "https://b.example/hooks"},
                                  headers=brand_b)).json()
    credit = (await client.post("/v1/members/b-member/credits", json={"amount": 100, "reason": "seed"},
                                headers=brand_b | idem())).json()
    hold = (await client.post("/v1/members/b-member/holds", json={"amount": 10, "reason": "seed"},
                              headers=brand_b | idem())).json()
    # B's member converts into brand C's (a third brand, linked): a conversion A is no party to.
    c = await exchange_brand()
    await open_pair(b, c)
    await member(c, "c-member")
    await link(b, "b-member", c, "c-member")
    converted = await convert(b, {"member": "b-member", "to_brand": c.code, "amount": 20})
    assert converted.status_code == 201, converted.text
    conversion_id = converted.json()["id"]
    window_id, dispute_id = await settle_the_day(admin, client, b, c)
    await relay()  # B's events become deliveries to B's endpoint
    delivery = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=brand_b)).json()
    ids = {"external_id": "b-member", "hold_id": hold["id"], "entry_id": credit["entry"]["id"],
           "endpoint_id": endpoint["id"], "delivery_id": delivery["data"][0]["id"], "kid": b.kid,
           "conversion_id": conversion_id, "window_id": window_id, "kind": "csv", "dispute_id": dispute_id}
    before = await snapshot(client, brand_b, conversion_id)

    walked = []
    for method, path, _ in api_routes(client.app):
        if path.startswith("/v1/admin"):
            url = path.replace("{key_id:str}", "x").replace("{window_id:int}", str(window_id))
            url = url.replace("{dispute_id:int}", str(dispute_id))
            for name in ("tenant_id", "source_tenant_id", "target_tenant_id"):
                url = url.replace(f"{{{name}:int}}", str(b.id))
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
            body = {**body, "window_id": window_id, "counterparty": c.code}
        assert method == "GET" or (method, path) in BODIES, f"the isolation walk needs a body for {method} {path}"
        if (method, path) in SIGNED:
            content, headers = signed_request(a, method, url, body)
            response = await client.request(method, url, headers=headers, content=content)
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
