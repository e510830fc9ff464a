"""The operator admits brands to the exchange with their caps, opens directed pairs, and reads positions."""

from __future__ import annotations

from decimal import Decimal


async def test_admission_caps_and_pairs(onboard, admin):
    tenant, _ = await onboard()
    other, _ = await onboard()
    admitted = await admin("POST", "/v1/admin/exchange/participants",
                           {"tenant_id": tenant["id"], "net_debit_cap": "5000.50"}, status=201)
    assert (admitted["brand"], admitted["status"], admitted["net_debit_cap"], admitted["cap_alarm_percent"]) == (
        tenant["code"], "active", "5000.5", 80)
    position = admitted["position"]
    assert Decimal(position["net_debit"]) == 0 and Decimal(position["available"]) == Decimal("5000.5")
    assert (await admin("POST", "/v1/admin/exchange/participants",
                        {"tenant_id": tenant["id"], "net_debit_cap": "1"}, status=409))["code"] == "participant_exists"
    assert (await admin("POST", "/v1/admin/exchange/participants",
                        {"tenant_id": 2**40, "net_debit_cap": "1"}, status=404))["code"] == "tenant_not_found"
    for cap in ("-1", "0.001", "1e20", "NaN"):
        assert (await admin("POST", "/v1/admin/exchange/participants", {"tenant_id": other["id"], "net_debit_cap": cap},
                            status=422))["code"] == "validation_error", cap
    changed = await admin("PATCH", f"/v1/admin/exchange/participants/{tenant['id']}",
                          {"net_debit_cap": "100", "cap_alarm_percent": 90, "status": "suspended"})
    assert (changed["net_debit_cap"], changed["cap_alarm_percent"], changed["status"]) == ("100", 90, "suspended")
    # A pair needs both brands in the exchange; it is directed.
    assert (await admin("POST", "/v1/admin/exchange/pairs", {"source_tenant_id": tenant["id"],
                                                             "target_tenant_id": other["id"]},
                        status=404))["code"] == "participant_not_found"
    await admin("POST", "/v1/admin/exchange/participants", {"tenant_id": other["id"], "net_debit_cap": "10"},
                status=201)
    pair = await admin("POST", "/v1/admin/exchange/pairs", {"source_tenant_id": tenant["id"],
                                                            "target_tenant_id": other["id"]}, status=201)
    assert (pair["source_brand"], pair["target_brand"], pair["status"]) == (tenant["code"], other["code"], "open")
    closed = await admin("PATCH", f"/v1/admin/exchange/pairs/{tenant['id']}/{other['id']}", {"status": "closed"})
    assert closed["status"] == "closed"
    reopened = await admin("POST", "/v1/admin/exchange/pairs", {"source_tenant_id": tenant["id"],
                                                                "target_tenant_id": other["id"]}, status=201)
    assert reopened["status"] == "open"
    assert (await admin("PATCH", f"/v1/admin/exchange/pairs/{other['id']}/{tenant['id']}", {"status": "open"},
                        status=404))["code"] == "pair_not_found"
    assert (await admin("POST", "/v1/admin/exchange/pairs", {"source_tenant_id": tenant["id"],
                                                             "target_tenant_id": tenant["id"]},
                        status=422))["code"] == "validation_error"
    everyone = await admin("GET", "/v1/admin/exchange/participants")
    assert {p["tenant_id"] for p in everyone} >= {tenant["id"], other["id"]}
    # All participants share the one open settlement window.
    assert len({p["position"]["window_id"] for p in everyone}) == 1
