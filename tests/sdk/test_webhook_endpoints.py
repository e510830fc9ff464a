"""Webhook endpoints and their delivery log through the SDK, and a brand's webhooks end to end: onboarded by
the operator, an endpoint registered, points credited, the event relayed, sent, verified and logged."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import alliance_sdk as sdk
import pytest
from alliance_sdk import Alliance, AsyncAlliance, webhooks

from alliance.db import run_in_transaction
from alliance.settings import get_settings
from alliance.webhooks.service import MAX_ENDPOINTS
from alliance.webhooks.tasks import deliver
from tests.platform.webhooks.conftest import Receiver


@pytest.fixture
def attempt(db, data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """One attempt at a delivery, as the worker would run it, with the server's data key (it decrypts the
    endpoint's signing secret); returns the delivery's status after it."""
    monkeypatch.setenv("ALLIANCE_DATA_DIR", str(data_dir))
    get_settings.cache_clear()

    async def run(tenant_id: int, delivery_id: int) -> str | None:
        return await run_in_transaction(db.sessions,
                                        lambda s: deliver(s, tenant_id=tenant_id, delivery_id=delivery_id))

    yield run
    monkeypatch.undo()
    get_settings.cache_clear()


def test_an_endpoint_is_registered_read_changed_and_deleted(brand: Alliance):
    created = brand.webhook_endpoints.create("https://hooks.example.com/alliance", description="orders",
                                             event_types=["points.debited", "points.credited"])
    assert created.secret.startswith("whsec_")
    assert (created.event_types, created.status, created.consecutive_failures) == (
        ("points.credited", "points.debited"), "active", 0)
    # The secret is in the creation's answer only.
    assert brand.webhook_endpoints.retrieve(created.id) == dataclasses.replace(created, secret=None)
    assert [e.id for e in brand.webhook_endpoints.list()] == [created.id]

    moved = brand.webhook_endpoints.update(created.id, url="http://hooks.example.com/v2")
    assert (moved.url, moved.event_types, moved.description) == ("http://hooks.example.com/v2",
                                                                 created.event_types, "orders")
    cleared = brand.webhook_endpoints.update(created.id, event_types=[], description=None)
    assert (cleared.url, cleared.event_types, cleared.description) == ("http://hooks.example.com/v2", (), None)
    disabled = brand.webhook_endpoints.update(created.id, status="disabled")
    assert (disabled.status, disabled.disabled_reason) == ("disabled", "disabled by the brand")

    assert brand.webhook_endpoints.delete(created.id) is None
    assert brand.webhook_endpoints.list() == []
    with pytest.raises(sdk.WebhookEndpointNotFoundError) as missing:
        brand.webhook_endpoints.retrieve(created.id)
    assert isinstance(missing.value, sdk.NotFoundError)
    with pytest.raises(sdk.WebhookEndpointNotFoundError):
        brand.webhook_endpoints.delete(created.id)
    with pytest.raises(sdk.WebhookDeliveryNotFoundError):
        brand.webhook_deliveries.redeliver(10**12)
    with pytest.raises(sdk.ValidationError):
        brand.webhook_endpoints.create("ftp://hooks.example.com/")


def test_a_brand_has_a_limited_number_of_endpoints(brand: Alliance):
    for n in range(MAX_ENDPOINTS):
        brand.webhook_endpoints.create(f"https://hooks.example.com/{n}")
    with pytest.raises(sdk.WebhookEndpointLimitReachedError) as refused:
        brand.webhook_endpoints.create("https://hooks.example.com/one-more")
    assert isinstance(refused.value, sdk.ConflictError) and refused.value.status_code == 409


async def test_the_delivery_log_pages_and_a_delivery_is_sent_again(async_brand: AsyncAlliance, relay):
    endpoint = await async_brand.webhook_endpoints.create("http://127.0.0.1:9/hooks")  # nothing listens there
    await async_brand.members.upsert("alice")
    for amount in (1, 2, 3):
        await async_brand.members.credit("alice", amount, reason="purchase")
    await relay()

    log = [d async for d in async_brand.webhook_endpoints.deliveries(endpoint.id, limit=2)]
    assert [d.payload["data"]["amount"] for d in log] == [3, 2, 1]
    assert {(d.endpoint_id, d.event_type, d.status) for d in log} == {(endpoint.id, "points.credited", "pending")}
    page = await async_brand.webhook_endpoints.deliveries_page(endpoint.id, limit=2)
    assert len(page.data) == 2 and page.next_cursor is not None
    assert [d async for d in async_brand.webhook_endpoints.deliveries(endpoint.id, status="succeeded")] == []

    again = await async_brand.webhook_deliveries.redeliver(log[0].id)
    assert (again.id, again.status, again.payload) == (log[0].id, "pending", log[0].payload)


async def test_a_brand_onboarded_through_the_sdk_receives_its_webhooks(
    base_url: str, operator_key: str, relay, attempt
):
    async with AsyncAlliance(api_key=operator_key, base_url=base_url) as operator:
        tenant = await operator.admin.tenants.create(code=f"cafe-{uuid.uuid4().hex[:8]}", name="Cafe",
                                                     currency_code="BEANS", point_value="0.10")
        key = await operator.admin.keys.create(tenant.id, name="backend")

    with Receiver() as receiver:
        async with AsyncAlliance(api_key=key.secret, base_url=base_url) as alliance:
            endpoint = await alliance.webhook_endpoints.create(receiver.url(), event_types=["points.credited"])
            await alliance.members.upsert("alice")
            credit = await alliance.members.credit("alice", 120, reason="purchase")

            await relay()
            [delivery] = [d async for d in alliance.webhook_endpoints.deliveries(endpoint.id)]
            assert (delivery.event_type, delivery.status, delivery.attempts) == ("points.credited", "pending", 0)
            assert await attempt(tenant.id, delivery.id) == "succeeded"

            [received] = receiver.at()
            event = webhooks.verify(received.body, received.headers, secret=endpoint.secret)
            assert event["type"] == "points.credited"
            assert event["data"] == {"member": "alice", "amount": 120, "entry_id": credit.entry.id,
                                     "reason": "purchase", "balances": [{"member": "alice", "balance": 120}]}
            [logged] = [d async for d in alliance.webhook_endpoints.deliveries(endpoint.id)]
            assert (logged.status, logged.attempts, logged.last_status_code) == ("succeeded", 1, 204)
            assert logged.delivered_at is not None and logged.payload == event
