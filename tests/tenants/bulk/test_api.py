"""POST /v1/bulk/operations: each item on its own (own key, own outcome), in item order, all or nothing
per item, replayable item by item."""

import asyncio
import random
import uuid

import pytest

from tests.api import bearer, idem

URL = "/v1/bulk/operations"


def item(kind: str, member: str, amount: int, key: str | None = None, **extra) -> dict:
    return {"kind": kind, "member": member, "amount": amount, "reason": "pos",
            "idempotency_key": key or uuid.uuid4().hex, **extra}


async def add_members(client, brand, *names: str, funded: int = 0) -> None:
    for name in names:
        assert (await client.post("/v1/members", json={"external_id": name}, headers=brand)).status_code == 201
        if funded:
            await client.post(f"/v1/members/{name}/credits", json={"amount": funded, "reason": "seed"},
                              headers=brand | idem())


async def balance(client, brand, member: str) -> int:
    return (await client.get(f"/v1/members/{member}/balance", headers=brand)).json()["balance"]


async def bulk(client, brand, items: list[dict]) -> list[dict]:
    response = await client.post(URL, json={"items": items}, headers=brand)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["idempotency_key"] for r in results] == [i["idempotency_key"] for i in items]
    return results


def outcomes(results: list[dict]) -> list[str]:
    return [r["status"] if r["status"] != "rejected" else r["error"]["code"] for r in results]


async def test_a_mixed_batch_applies_the_good_items_and_refuses_the_others_one_by_one(client, onboard):
    _, brand = await onboard()
    await add_members(client, brand, "alice", funded=100)
    await add_members(client, brand, "bob")
    await client.patch("/v1/members/bob", json={"status": "frozen"}, headers=brand)
    first = item("credit", "alice", 50)
    results = await bulk(client, brand, [
        first,
        item("debit", "alice", 500),
        item("credit", "ghost", 5),
        item("credit", "bob", 5),
        item("debit", "alice", 30),
        dict(first),  # the same key and item again, within the batch
        {**first, "amount": 51},  # the same key, another item
    ])
    assert outcomes(results) == ["applied", "insufficient_points", "member_not_found", "member_frozen", "applied",
                                 "replayed", "idempotency_key_reused"]
    assert [r.get("balance") for r in results] == [150, None, None, None, 120, 150, None]
    assert results[5]["entry_id"] == results[0]["entry_id"]
    refused = results[1]["error"]
    assert (refused["code"], refused["title"], refused["available"], refused["requested"]) == (
        "insufficient_points", "Insufficient points", 150, 500)
    assert results[2]["error"] == {"code": "member_not_found", "title": "No such member", "member": "ghost"}
    assert await balance(client, brand, "alice") == 120
    assert await balance(client, brand, "bob") == 0


async def test_items_on_one_member_apply_in_item_order(client, onboard):
    _, brand = await onboard()
    await add_members(client, brand, "carol", funded=100)
    results = await bulk(client, brand, [item("debit", "carol", 70), item("debit", "carol", 50),
                                         item("debit", "carol", 30), item("credit", "carol", 5)])
    assert outcomes(results) == ["applied", "insufficient_points", "applied", "applied"]
    assert [r.get("balance") for r in results] == [30, None, 0, 5]
    assert results[0]["entry_id"] < results[2]["entry_id"] < results[3]["entry_id"]
    history = (await client.get("/v1/members/carol/history", headers=brand)).json()["data"]
    assert [line["amount"] for line in history] == [5, -30, -70, 100]


async def test_a_retried_batch_replays_item_by_item_with_no_double_effect(client, onboard):
    _, brand = await onboard()
    await add_members(client, brand, "dave", "erin", funded=10)
    items = [item("credit", "dave", 7), item("debit", "erin", 11), item("debit", "dave", 15), item("credit", "zed", 1)]
    first = await bulk(client, brand, items)
    again = await bulk(client, brand, items)
    assert outcomes(first) == ["applied", "insufficient_points", "applied", "member_not_found"]
    assert outcomes(again) == ["replayed", "insufficient_points", "replayed", "member_not_found"]
    assert [r.get("entry_id") for r in again] == [r.get("entry_id") for r in first]
    assert [r.get("balance") for r in again] == [r.get("balance") for r in first] == [17, None, 2, None]
    assert (await balance(client, brand, "dave"), await balance(client, brand, "erin")) == (2, 10)


async def test_keys_replay_across_batches_and_from_the_single_credit_endpoint(client, onboard):
    _, brand = await onboard()
    await add_members(client, brand, "frank")
    single = await client.post("/v1/members/frank/credits", json={"amount": 40, "reason": "pos"},
                               headers=brand | {"idempotency-key": "till-7-receipt-1"})
    assert single.status_code == 201, single.text
    earlier = item("credit", "frank", 3)
    await bulk(client, brand, [earlier])
    results = await bulk(client, brand, [item("credit", "frank", 40, key="till-7-receipt-1"), earlier,
                                         item("debit", "frank", 40, key="till-7-receipt-1")])
    assert outcomes(results) == ["replayed", "replayed", "idempotency_key_reused"]
    assert results[0]["entry_id"] == single.json()["entry"]["id"]
    assert await balance(client, brand, "frank") == 43


async def test_a_batch_of_a_thousand_items(client, onboard):
    _, brand = await onboard()
    members = [f"m{n}" for n in range(50)]
    await add_members(client, brand, *members)
    items = [item("credit", members[n % 50], n + 1) for n in range(1000)]
    results = await bulk(client, brand, items)
    assert outcomes(results) == ["applied"] * 1000
    assert sum([await balance(client, brand, m) for m in members]) == sum(range(1, 1001))
    assert results[-1]["balance"] == sum(range(50, 1001, 50))


async def test_credit_expiry_explicit_default_and_past(client, onboard):
    _, brand = await onboard(expiry_days=10)
    await add_members(client, brand, "gus")
    results = await bulk(client, brand, [item("credit", "gus", 5),
                                         item("credit", "gus", 6, expires_at="2999-01-01T00:00:00Z"),
                                         item("credit", "gus", 7, expires_at="2000-01-01T00:00:00Z")])
    assert outcomes(results) == ["applied", "applied", "validation_error"]
    soon = (await client.get("/v1/members/gus/balance?expiring_within_days=30", headers=brand)).json()
    assert (soon["balance"], sum(e["amount"] for e in soon["expiring"])) == (11, 5)


async def test_concurrent_batches_over_the_same_members_never_deadlock_or_lose_points(client, onboard):
    _, brand = await onboard()
    members = [f"n{n}" for n in range(20)]
    await add_members(client, brand, *members, funded=1000)

    def shuffled_batch() -> list[dict]:
        batch = [item("debit", m, 3) for m in members] + [item("credit", m, 2) for m in members]
        random.shuffle(batch)
        return batch

    batches = [shuffled_batch() for _ in range(6)]
    responses = await asyncio.gather(*(client.post(URL, json={"items": b}, headers=brand) for b in batches))
    assert [r.status_code for r in responses] == [200] * 6
    assert all(outcomes(r.json()["results"]) == ["applied"] * 40 for r in responses)
    assert [await balance(client, brand, m) for m in members] == [1000 - 6] * 20


@pytest.mark.parametrize(
    "items",
    [
        [],
        [{"kind": "credit", "member": "ivan", "amount": 1, "reason": "x", "idempotency_key": str(n)}
         for n in range(1001)],
        [{"kind": "credit", "member": "ivan", "amount": 0, "reason": "x", "idempotency_key": "k"}],
        [{"kind": "credit", "member": "ivan", "amount": 5, "reason": "x"}],
        [{"kind": "credit", "member": "ivan", "reason": "x", "idempotency_key": "k"}],
        [{"member": "ivan", "amount": 5, "reason": "x", "idempotency_key": "k"}],
        [{"kind": "refund", "member": "ivan", "amount": 5, "reason": "x", "idempotency_key": "k"}],
        [{"kind": "debit", "member": "ivan", "amount": 5, "reason": "x", "idempotency_key": "k",
          "expires_at": "2999-01-01T00:00:00Z"}],
        [{"kind": "credit", "member": "ivan", "amount": 5, "reason": "x", "idempotency_key": "bad\x00key"}],
        [{"kind": "credit", "member": "ivan", "amount": 5, "reason": "x", "idempotency_key": "k" * 256}],
        [{"kind": "credit", "member": "ivan", "amount": 5, "reason": "x", "idempotency_key": "k",
          "expires_at": "2999-01-01T00:00:00"}],
    ],
    ids=["empty", "1001-items", "amount-0", "no-key", "no-amount", "no-kind", "unknown-kind", "debit-with-expiry",
         "nul-in-key", "key-too-long", "expiry-without-offset"],
)
async def test_bad_input_is_a_validation_problem_and_applies_nothing(client, onboard, items):
    _, brand = await onboard()
    await add_members(client, brand, "ivan")
    good = item("credit", "ivan", 9)
    response = await client.post(URL, json={"items": [good, *items] if items else []}, headers=brand)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_error"
    assert await balance(client, brand, "ivan") == 0


async def test_bulk_is_for_brand_keys_only(client, operator_key):
    response = await client.post(URL, json={"items": [item("credit", "x", 1)]}, headers=bearer(operator_key))
    assert response.status_code == 403
