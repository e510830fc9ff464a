"""What the brand API and the ledger announce: one event per operation that changed something, none for an
idempotent replay, and the ledger's expiry events told as the member's."""

import json
from datetime import UTC, datetime, timedelta

from alliance.db import run_in_transaction
from alliance.ledger.tasks import expire_holds, expire_points
from tests.api import idem


async def member_events(pool, tenant_id: int) -> list[tuple[str, dict]]:
    rows = await pool.fetch(
        "SELECT event_type, payload FROM outbox_events WHERE tenant_id = $1 AND aggregate_type = 'member' ORDER BY id",
        tenant_id,
    )
    return [(r["event_type"], json.loads(r["payload"])) for r in rows]


async def test_every_value_operation_and_status_change_is_announced_once(client, pool, brand):
    tenant, headers = await brand()
    await client.post("/v1/members", json={"external_id": "bob"}, headers=headers)

    async def call(method: str, path: str, body: dict | None = None, key: dict | None = None) -> dict:
        response = await client.request(method, path, headers=headers | (key or idem()),
                                        **({"json": body} if body is not None else {}))
        assert response.status_code in (200, 201), response.text
        return response.json()

    credit_key = idem()
    credited = await call("POST", "/v1/members/alice/credits", {"amount": 500, "reason": "purchase"}, credit_key)
    # A retry with the same key answers the same and announces nothing more.
    replay = await call("POST", "/v1/members/alice/credits", {"amount": 500, "reason": "purchase"}, credit_key)
    assert replay["entry"] == credited["entry"]
    debited = await call("POST", "/v1/members/alice/debits", {"amount": 100, "reason": "coffee"})
    gifted = await call("POST", "/v1/members/alice/gifts", {"to": "bob", "amount": 50})
    hold_key = idem()
    held = await call("POST", "/v1/members/alice/holds", {"amount": 80, "reason": "order"}, hold_key)
    assert (await call("POST", "/v1/members/alice/holds", {"amount": 80, "reason": "order"}, hold_key))["id"] == held["id"]
    captured = await call("POST", f"/v1/holds/{held['id']}/capture", {"amount": 30})
    released_hold = await call("POST", "/v1/members/alice/holds", {"amount": 20, "reason": "order"})
    release_key = idem()
    await call("POST", f"/v1/holds/{released_hold['id']}/release", None, release_key)
    await call("POST", f"/v1/holds/{released_hold['id']}/release", None, release_key)
    reversed_ = await call("POST", f"/v1/entries/{gifted['entry']['id']}/reversal", {"reason": "mistake"})
    await call("PATCH", "/v1/members/alice", {"status": "frozen"})
    await call("PATCH", "/v1/members/alice", {"status": "frozen", "nickname": "Al"})  # no change of status
    await call("PATCH", "/v1/members/alice", {"status": "active"})

    assert await member_events(pool, tenant["id"]) == [
        ("points.credited", {"member": "alice", "amount": 500, "entry_id": credited["entry"]["id"],
                             "reason": "purchase", "balances": [{"member": "alice", "balance": 500}]}),
        ("points.debited", {"member": "alice", "amount": 100, "entry_id": debited["entry"]["id"],
                            "reason": "coffee", "balances": [{"member": "alice", "balance": 400}]}),
        ("points.gifted", {"member": "alice", "to": "bob", "amount": 50, "entry_id": gifted["entry"]["id"],
                           "balances": gifted["balances"]}),
        ("hold.created", {"member": "alice", "hold_id": held["id"], "amount": 80,
                          "expires_at": held["expires_at"]}),
        ("hold.captured", {"member": "alice", "hold_id": held["id"], "amount": 30,
                           "entry_id": captured["entry"]["id"], "balances": [{"member": "alice", "balance": 320}]}),
        ("hold.created", {"member": "alice", "hold_id": released_hold["id"], "amount": 20,
                          "expires_at": released_hold["expires_at"]}),
        ("hold.released", {"member": "alice", "hold_id": released_hold["id"], "amount": 20}),
        ("points.reversed", {"member": reversed_["balances"][0]["member"], "entry_id": reversed_["entry"]["id"],
                             "reverses_entry_id": gifted["entry"]["id"], "reason": "mistake",
                             "balances": reversed_["balances"]}),
        ("member.frozen", {"member": "alice"}),
        ("member.unfrozen", {"member": "alice"}),
    ]


async def test_expiry_is_told_as_the_members(
    client, db, pool, brand, register, deliveries, relay, attempt, receiver
):
    tenant, headers = await brand()
    endpoint = await register(headers, receiver.url(), event_types=["points.expired", "hold.expired"])
    soon = datetime.now(UTC) + timedelta(minutes=1)
    credited = await client.post("/v1/members/alice/credits", headers=headers | idem(),
                                 json={"amount": 40, "reason": "promo", "expires_at": soon.isoformat()})
    held = await client.post("/v1/members/alice/holds", json={"amount": 15, "reason": "order"},
                             headers=headers | idem())
    later = (soon + timedelta(days=8)).isoformat()  # past both deadlines
    await run_in_transaction(db.sessions, lambda s: expire_holds(s, as_of=later))
    await run_in_transaction(db.sessions, lambda s: expire_points(s, as_of=later))

    await relay()
    logged = await deliveries(headers, endpoint["id"])
    assert [d["event_type"] for d in logged] == ["points.expired", "hold.expired"]
    for delivery in reversed(logged):
        assert await attempt(tenant["id"], delivery["id"]) == "succeeded"
    hold_expired, points_expired = (json.loads(r.body) for r in receiver.received)
    assert hold_expired["data"] == {"member": "alice", "hold_id": held.json()["id"], "amount": 15}
    assert points_expired["data"]["member"] == "alice"
    assert points_expired["data"]["amount"] == 40
    assert points_expired["data"]["entry_id"] != credited.json()["entry"]["id"]
