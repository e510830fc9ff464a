"""From a value operation to a signed POST on a real receiver: fan-out, signature, retries with backoff,
giving up, disabling a failing endpoint (and telling the brand), redelivery."""

from datetime import timedelta

from standardwebhooks.webhooks import Webhook

from alliance.db import run_in_transaction
from alliance.webhooks.service import DISABLE_AFTER_FAILURES, MAX_ATTEMPTS, RETRY_DELAYS
from alliance.webhooks.tasks import send_due_retries
from tests.api import idem


async def credit(client, headers, amount: int = 10) -> dict:
    response = await client.post("/v1/members/alice/credits", json={"amount": amount, "reason": "purchase"},
                                 headers=headers | idem())
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_credit_reaches_the_receiver_signed_to_the_spec(
    client, redis, brand, register, deliveries, relay, attempt, receiver
):
    tenant, headers = await brand()
    everything = await register(headers, receiver.url("/all"))
    debits_only = await register(headers, receiver.url("/debits"), event_types=["points.debited"])
    operation = await credit(client, headers, 120)

    await relay()
    [delivery] = await deliveries(headers, everything["id"])
    assert await deliveries(headers, debits_only["id"]) == []
    assert await redis.llen("dramatiq:webhooks") >= 1  # sent to the worker once the relay committed
    assert (delivery["status"], delivery["attempts"], delivery["event_type"]) == ("pending", 0, "points.credited")

    assert await attempt(tenant["id"], delivery["id"]) == "succeeded"
    [received] = receiver.at("/all")
    # The signature covers the exact bytes received; verify() also checks that the timestamp is fresh.
    message = Webhook(everything["secret"]).verify(received.body, received.headers)
    assert message["type"] == "points.credited"
    assert message["timestamp"].endswith("Z")
    assert message["data"] == {
        "member": "alice", "amount": 120, "entry_id": operation["entry"]["id"], "reason": "purchase",
        "balances": [{"member": "alice", "balance": 120}],
    }
    assert received.headers["webhook-id"] == f"msg_{delivery['event_id']}"
    assert received.headers["content-type"] == "application/json"

    [logged] = await deliveries(headers, everything["id"])
    assert (logged["status"], logged["attempts"], logged["last_status_code"]) == ("succeeded", 1, 204)
    assert logged["delivered_at"] is not None and logged["next_attempt_at"] is None
    assert logged["payload"] == message
    # A duplicate message for a delivery already made sends nothing.
    assert await attempt(tenant["id"], delivery["id"]) is None
    assert len(receiver.received) == 1


async def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(
    client, db, pool, redis, brand, register, deliveries, relay, attempt, make_due, receiver
):
    tenant, headers = await brand()
    endpoint = await register(headers, receiver.url())
    receiver.answer("/hooks", 500, 503)
    await credit(client, headers)
    await relay()
    [delivery] = await deliveries(headers, endpoint["id"])

    for attempts, status_code in ((1, 500), (2, 503)):
        before = await pool.fetchval("SELECT clock_timestamp()")
        assert await attempt(tenant["id"], delivery["id"]) == "pending"
        [logged] = await deliveries(headers, endpoint["id"])
        assert (logged["attempts"], logged["last_status_code"]) == (attempts, status_code)
        assert logged["last_error"].startswith(f"HTTP {status_code}")
        due = await pool.fetchval("SELECT next_attempt_at FROM webhook_deliveries WHERE id = $1", delivery["id"])
        assert timedelta(0) < due - before - RETRY_DELAYS[attempts - 1] < timedelta(seconds=5)
        assert await attempt(tenant["id"], delivery["id"]) is None  # not due yet: nothing is sent
        assert len(receiver.received) == attempts
        await make_due(delivery["id"])

    # The scheduler's sweep enqueues what has come due.
    await redis.delete("dramatiq:webhooks")
    assert await run_in_transaction(db.sessions, send_due_retries) >= 1
    assert await redis.llen("dramatiq:webhooks") >= 1

    assert await attempt(tenant["id"], delivery["id"]) == "succeeded"
    [logged] = await deliveries(headers, endpoint["id"])
    assert (logged["status"], logged["attempts"], logged["last_error"]) == ("succeeded", 3, None)
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one message, three attempts
    assert (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=headers)).json()[
        "consecutive_failures"] == 0


async def test_a_delivery_fails_for_good_after_its_last_attempt(
    client, brand, register, deliveries, relay, attempt, make_due, receiver
):
    tenant, headers = await brand()
    endpoint = await register(headers, receiver.url())
    receiver.answer("/hooks", *[500] * MAX_ATTEMPTS)
    await credit(client, headers)
    await relay()
    [delivery] = await deliveries(headers, endpoint["id"])

    statuses = []
    for _ in range(MAX_ATTEMPTS):
        statuses.append(await attempt(tenant["id"], delivery["id"]))
        await make_due(delivery["id"])
    assert statuses == ["pending"] * (MAX_ATTEMPTS - 1) + ["failed"]
    [logged] = await deliveries(headers, endpoint["id"], status="failed")
    assert (logged["attempts"], logged["next_attempt_at"]) == (MAX_ATTEMPTS, None)


async def test_an_unreachable_receiver_is_a_failed_attempt(client, brand, register, deliveries, relay, attempt):
    tenant, headers = await brand()
    endpoint = await register(headers, "http://127.0.0.1:9/hooks")  # discard port: nothing listens
    await credit(client, headers)
    await relay()
    [delivery] = await deliveries(headers, endpoint["id"])
    assert await attempt(tenant["id"], delivery["id"]) == "pending"
    [logged] = await deliveries(headers, endpoint["id"])
    assert logged["last_status_code"] is None and logged["last_error"].startswith("ConnectError")


async def test_an_endpoint_failing_again_and_again_is_disabled_and_the_brand_told(
    client, brand, register, deliveries, relay, attempt, receiver
):
    tenant, headers = await brand()
    failing = await register(headers, receiver.url("/failing"), event_types=["points.credited"])
    watcher = await register(headers, receiver.url("/watcher"), event_types=["webhook_endpoint.disabled"])
    receiver.answer("/failing", *[500] * DISABLE_AFTER_FAILURES)
    for _ in range(DISABLE_AFTER_FAILURES + 1):
        await credit(client, headers)
    await relay()
    pending = await deliveries(headers, failing["id"], limit=100)
    assert len(pending) == DISABLE_AFTER_FAILURES + 1

    outcomes = [await attempt(tenant["id"], d["id"]) for d in reversed(pending)]
    # Each failure is one in a row; the last one disables the endpoint and abandons what was still pending.
    assert outcomes == ["pending"] * (DISABLE_AFTER_FAILURES - 1) + ["abandoned", None]
    disabled = (await client.get(f"/v1/webhook-endpoints/{failing['id']}", headers=headers)).json()
    assert disabled["status"] == "disabled"
    assert disabled["disabled_reason"] == f"{DISABLE_AFTER_FAILURES} delivery attempts in a row failed"
    assert {d["status"] for d in await deliveries(headers, failing["id"], limit=100)} == {"abandoned"}

    # The brand hears of it on its other endpoint.
    await relay()
    [notice] = await deliveries(headers, watcher["id"])
    assert await attempt(tenant["id"], notice["id"]) == "succeeded"
    [received] = receiver.at("/watcher")
    message = Webhook(watcher["secret"]).verify(received.body, received.headers)
    assert message["type"] == "webhook_endpoint.disabled"
    assert message["data"] == {"endpoint_id": failing["id"], "url": failing["url"],
                               "reason": disabled["disabled_reason"]}

    # Events while it is disabled are not delivered to it; re-enabled, it receives again.
    await credit(client, headers)
    await relay()
    assert len(await deliveries(headers, failing["id"], limit=100)) == DISABLE_AFTER_FAILURES + 1
    enabled = await client.patch(f"/v1/webhook-endpoints/{failing['id']}", json={"status": "active"},
                                 headers=headers)
    assert enabled.json()["status"] == "active"
    assert (enabled.json()["disabled_reason"], enabled.json()["consecutive_failures"]) == (None, 0)
    await credit(client, headers)
    await relay()
    newest = (await deliveries(headers, failing["id"]))[0]
    assert await attempt(tenant["id"], newest["id"]) == "succeeded"


async def test_redelivery_sends_the_same_message_again(
    client, redis, brand, register, deliveries, relay, attempt, receiver
):
    tenant, headers = await brand()
    endpoint = await register(headers, receiver.url())
    await credit(client, headers)
    await relay()
    [delivery] = await deliveries(headers, endpoint["id"])
    assert await attempt(tenant["id"], delivery["id"]) == "succeeded"

    await redis.delete("dramatiq:webhooks")
    again = await client.post(f"/v1/webhook-deliveries/{delivery['id']}/redeliver", headers=headers)
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "pending"
    assert await redis.llen("dramatiq:webhooks") == 1  # sent to the worker once the request committed
    assert await attempt(tenant["id"], delivery["id"]) == "succeeded"

    first, second = receiver.received
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    Webhook(endpoint["secret"]).verify(second.body, second.headers)
    [logged] = await deliveries(headers, endpoint["id"])
    assert (logged["status"], logged["attempts"]) == ("succeeded", 2)
