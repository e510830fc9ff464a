"""Webhook endpoints, the fan-out of outbox events into deliveries, and the delivery attempts.

Every function takes a session and never commits. The brand-facing ones run in a session scoped to the
brand (alliance.db.tenancy); the worker-facing ones (fan-out, attempts, sweep) name the tenant explicitly."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import structlog
from sqlalchemy import column, func, select, table, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from alliance.crypto.fields import FieldCipher
from alliance.db.tenancy import scoped_tenant_id
from alliance.errors import ProblemError
from alliance.webhooks import EVENT_TYPES
from alliance.webhooks.models import WebhookDelivery, WebhookEndpoint
from alliance.webhooks.schemas import DeliveryPage, DeliveryRead, EndpointCreate, EndpointRead, EndpointUpdate
from alliance.worker.outbox import OutboxEvent, add_event

log = structlog.get_logger(__name__)

SECRET_FIELD = "webhook_secret"  # the field name FieldCipher binds the ciphertext to
SECRET_BYTES = 32
# A soft cap (concurrent creations may pass it by a few): every event costs one delivery per endpoint.
MAX_ENDPOINTS = 50
SEND_TIMEOUT = timedelta(seconds=10)
# A claimed delivery is not due again for this long, so nobody else sends it while an attempt is under way.
CLAIM_LEASE = SEND_TIMEOUT * 6
# Waits after the 1st, 2nd, … failed attempt; after the last one the delivery has failed.
RETRY_DELAYS = tuple(timedelta(seconds=s) for s in (5, 30, 120, 600, 3600, 4 * 3600, 8 * 3600))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
DISABLE_AFTER_FAILURES = 20  # failed attempts in a row, whatever the deliveries
ERROR_EXCERPT_BYTES = 500

# The brands' members (tenants.models.Member), named here only by table: the kernel never imports a domain.
_members = table("members", column("tenant_id"), column("account_id"), column("external_id"))


# --- announcing: what the domains call in the transaction that changes something ----------------------


async def announce(session: AsyncSession, event_type: str, member: str, **data: Any) -> None:
    """Writes a member event for the brand's webhooks to the outbox, in the caller's transaction (tenant from
    the session's scope). `data` may hold datetimes and Structs; they are stored as JSON."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"{event_type!r} is not in the webhook event catalogue")
    tenant_id = scoped_tenant_id(session)
    # The aggregate names the tenant too: brands' members may share an external id, and the relay orders
    # (and on failure holds back) the events of one aggregate.
    await add_event(session, tenant_id=tenant_id, aggregate_type="member", aggregate_id=f"{tenant_id}:{member}",
                    event_type=event_type, payload=msgspec.to_builtins({"member": member, **data}))


# --- endpoints: the brand API ---------------------------------------------------------------------------


def endpoint_read(endpoint: WebhookEndpoint) -> EndpointRead:
    return EndpointRead(
        id=endpoint.id, url=endpoint.url, description=endpoint.description, event_types=endpoint.event_types,
        status=endpoint.status, disabled_reason=endpoint.disabled_reason,
        consecutive_failures=endpoint.consecutive_failures, created_at=endpoint.created_at,
    )


def delivery_read(delivery: WebhookDelivery) -> DeliveryRead:
    return DeliveryRead(
        id=delivery.id, endpoint_id=delivery.endpoint_id, event_id=delivery.event_id,
        event_type=delivery.event_type, status=delivery.status, attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at, last_status_code=delivery.last_status_code,
        last_error=delivery.last_error, created_at=delivery.created_at, delivered_at=delivery.delivered_at,
        payload=delivery.payload,
    )


async def create_endpoint(
    session: AsyncSession, cipher: FieldCipher, data: EndpointCreate
) -> tuple[WebhookEndpoint, str]:
    """Registers an endpoint with a new signing secret; returns (endpoint, secret). The secret is stored
    only encrypted and is never shown again."""
    tenant_id = scoped_tenant_id(session)
    if await session.scalar(select(func.count()).select_from(WebhookEndpoint)) >= MAX_ENDPOINTS:
        raise ProblemError(409, "webhook_endpoint_limit_reached", "This brand has too many webhook endpoints",
                           f"A brand may have {MAX_ENDPOINTS} endpoints; delete one first.")
    secret = "whsec_" + base64.b64encode(os.urandom(SECRET_BYTES)).decode()
    endpoint = WebhookEndpoint(
        url=data.url, description=data.description, event_types=sorted(set(data.event_types)),
        secret_enc=cipher.encrypt(secret, tenant_id=tenant_id, field=SECRET_FIELD),
    )
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint, secret


async def list_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    return list(await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


async def get_endpoint(session: AsyncSession, endpoint_id: int, *, lock: bool = False) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    # FOR NO KEY UPDATE: serializes changes of the endpoint without blocking new deliveries referencing it.
    endpoint = await session.scalar(query.with_for_update(key_share=True) if lock else query)
    if endpoint is None:
        raise ProblemError(404, "webhook_endpoint_not_found", "No such webhook endpoint",
                           extra={"endpoint_id": endpoint_id})
    return endpoint


async def update_endpoint(session: AsyncSession, endpoint_id: int, data: EndpointUpdate) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, endpoint_id, lock=True)
    if data.url is not msgspec.UNSET:
        endpoint.url = data.url
    if data.description is not msgspec.UNSET:
        endpoint.description = data.description
    if data.event_types is not msgspec.UNSET:
        endpoint.event_types = sorted(set(data.event_types))
    if data.status == "active" and endpoint.status != "active":
        endpoint.status, endpoint.disabled_reason, endpoint.consecutive_failures = "active", None, 0
    elif data.status == "disabled" and endpoint.status != "disabled":
        await _disable(session, endpoint, "disabled by the brand")
    endpoint.updated_at = func.now()
    await session.flush()
    await session.refresh(endpoint)
    return endpoint


async def delete_endpoint(session: AsyncSession, endpoint_id: int) -> None:
    """Deletes the endpoint and its delivery log (an attempt under way finds nothing to record)."""
    await session.delete(await get_endpoint(session, endpoint_id, lock=True))
    await session.flush()


async def list_deliveries(
    session: AsyncSession, endpoint_id: int, *, cursor: int | None, limit: int, status: str | None
) -> DeliveryPage:
    """An endpoint's deliveries, newest first; page on with `cursor` (the last one's id)."""
    await get_endpoint(session, endpoint_id)
    query = (select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
             .order_by(WebhookDelivery.id.desc()).limit(limit + 1))
    if cursor is not None:
        query = query.where(WebhookDelivery.id < cursor)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    deliveries = list(await session.scalars(query))
    page = deliveries[:limit]
    return DeliveryPage(data=[delivery_read(d) for d in page],
                        next_cursor=str(page[-1].id) if len(deliveries) > limit else None)


async def redeliver(session: AsyncSession, delivery_id: int) -> WebhookDelivery:
    """Makes a delivery due now, whatever its status; the caller has it sent after commit. It keeps its
    attempts: one that had run out gets this one attempt, one of a disabled endpoint is not retried."""
    delivery = await session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
    )
    if delivery is None:
        raise ProblemError(404, "webhook_delivery_not_found", "No such webhook delivery",
                           extra={"delivery_id": delivery_id})
    delivery.status, delivery.next_attempt_at = "pending", func.now()
    await session.flush()
    await session.refresh(delivery)
    return delivery


async def _disable(session: AsyncSession, endpoint: WebhookEndpoint, reason: str) -> None:
    """Stops deliveries to the endpoint: its pending ones are abandoned (the brand may redeliver them)."""
    endpoint.status, endpoint.disabled_reason = "disabled", reason
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.tenant_id == endpoint.tenant_id, WebhookDelivery.endpoint_id == endpoint.id,
               WebhookDelivery.status == "pending")
        .values(status="abandoned", next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )


# --- fan-out: an outbox event becomes one delivery per subscribed endpoint -------------------------------


async def fan_out(session: AsyncSession, event: OutboxEvent) -> list[tuple[int, int]]:
    """Creates a delivery of `event` for each active endpoint of its tenant subscribed to its type; returns
    their (tenant_id, delivery_id). Handing the same event over again creates none."""
    if event.tenant_id is None:
        return []
    endpoint_ids = list(await session.scalars(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.tenant_id == event.tenant_id,
            WebhookEndpoint.status == "active",
            (func.cardinality(WebhookEndpoint.event_types) == 0)
            | WebhookEndpoint.event_types.contains([event.event_type]),
        )
    ))
    if not endpoint_ids:
        return []
    data = await _event_data(session, event)
    if data is None:
        return []
    message = {"type": event.event_type,
               "timestamp": event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
               "data": data}
    created = await session.scalars(
        insert(WebhookDelivery)
        .values([{"tenant_id": event.tenant_id, "endpoint_id": endpoint_id, "event_id": event.id,
                  "event_type": event.event_type, "payload": message} for endpoint_id in endpoint_ids])
        .on_conflict_do_nothing(index_elements=["tenant_id", "endpoint_id", "event_id"])
        .returning(WebhookDelivery.id)
    )
    return [(event.tenant_id, delivery_id) for delivery_id in created]


async def _event_data(session: AsyncSession, event: OutboxEvent) -> dict[str, Any] | None:
    """The `data` of an event's message. The ledger's own events (expiry) name an account: they are told
    as the member's, and not at all for an account that is no brand member's."""
    if event.aggregate_type != "ledger_account":
        return event.payload
    member = await session.scalar(
        select(_members.c.external_id)
        .where(_members.c.tenant_id == event.tenant_id, _members.c.account_id == int(event.aggregate_id))
    )
    if member is None:
        return None
    payload = event.payload
    if event.event_type == "points.expired":
        return {"member": member, "amount": payload["amount"], "entry_id": payload["entry_id"],
                "as_of": payload["as_of"]}
    return {"member": member, "hold_id": payload["id"], "amount": payload["amount"]}  # hold.expired


# --- attempts ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    tenant_id: int
    delivery_id: int
    endpoint_id: int
    event_id: int
    url: str
    secret_enc: bytes
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None  # None: no answer (refused, timed out)
    error: str | None  # None: a 2xx

    @property
    def ok(self) -> bool:
        return self.error is None


async def claim_delivery(session: AsyncSession, tenant_id: int, delivery_id: int) -> Attempt | None:
    """Takes a due pending delivery for one attempt, or None if it is not due (done, or another worker has
    it). Its next attempt moves CLAIM_LEASE ahead, so once the caller commits the claim holds without a
    transaction staying open while the request is on the network, and a crashed attempt is retried later."""
    claimed = (await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id == delivery_id,
               WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= func.now())
        .values(next_attempt_at=func.now() + CLAIM_LEASE)
        .returning(WebhookDelivery.endpoint_id, WebhookDelivery.event_id, WebhookDelivery.payload)
        .execution_options(synchronize_session=False)
    )).one_or_none()
    if claimed is None:
        return None
    endpoint = (await session.execute(
        select(WebhookEndpoint.url, WebhookEndpoint.secret_enc)
        .where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == claimed.endpoint_id)
    )).one()
    return Attempt(tenant_id=tenant_id, delivery_id=delivery_id, endpoint_id=claimed.endpoint_id,
                   event_id=claimed.event_id, url=endpoint.url, secret_enc=endpoint.secret_enc,
                   payload=claimed.payload)


async def send(attempt: Attempt, cipher: FieldCipher) -> AttemptResult:
    """POSTs the message, signed to the Standard Webhooks spec. Only a 2xx counts; redirects are not followed."""
    secret = cipher.decrypt(attempt.secret_enc, tenant_id=attempt.tenant_id, field=SECRET_FIELD)
    body = msgspec.json.encode(attempt.payload).decode()
    message_id = f"msg_{attempt.event_id}"  # one id for every attempt at one event: receivers dedupe on it
    timestamp = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()), UTC)
    headers = {
        "content-type": "application/json",
        "user-agent": "Alliance-Webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
    }
    try:
        async with (
            httpx.AsyncClient(timeout=SEND_TIMEOUT.total_seconds(), follow_redirects=False) as client,
            client.stream("POST", attempt.url, content=body.encode(), headers=headers) as response,
        ):
            if response.is_success:
                return AttemptResult(response.status_code, None)
            return AttemptResult(response.status_code, f"HTTP {response.status_code}: {await _excerpt(response)}")
    except Exception as exc:  # refused, timed out, unresolvable, …: whatever it is, this attempt failed
        return AttemptResult(None, f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT_BYTES])


async def _excerpt(response: httpx.Response) -> str:
    """The start of a refusal's body, read no further: a receiver may answer with anything."""
    read = b""
    async for chunk in response.aiter_bytes():
        read += chunk
        if len(read) >= ERROR_EXCERPT_BYTES:
            break
    return read[:ERROR_EXCERPT_BYTES].decode(errors="replace")


async def record_attempt(session: AsyncSession, attempt: Attempt, result: AttemptResult) -> str | None:
    """Records an attempt's outcome on the delivery and its endpoint; returns the delivery's status, None if
    the endpoint was deleted meanwhile. A failure is retried after the next of RETRY_DELAYS, and fails for
    good after MAX_ATTEMPTS; DISABLE_AFTER_FAILURES failures in a row disable the endpoint and tell the
    brand's other endpoints (webhook_endpoint.disabled)."""
    # The endpoint first, as every change of an endpoint does, so that two such transactions never deadlock.
    endpoint = await session.scalar(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == attempt.tenant_id, WebhookEndpoint.id == attempt.endpoint_id)
        .with_for_update(key_share=True)
    )
    delivery = await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.tenant_id == attempt.tenant_id, WebhookDelivery.id == attempt.delivery_id)
        .with_for_update()
    )
    if endpoint is None or delivery is None:
        return None
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_error = result.status_code, result.error
    if result.ok:
        endpoint.consecutive_failures = 0
        delivery.status, delivery.next_attempt_at, delivery.delivered_at = "succeeded", None, func.now()
    else:
        endpoint.consecutive_failures += 1
        if endpoint.status == "active" and endpoint.consecutive_failures >= DISABLE_AFTER_FAILURES:
            await _disable_for_failures(session, endpoint)
        if delivery.attempts >= MAX_ATTEMPTS:
            delivery.status, delivery.next_attempt_at = "failed", None
        elif endpoint.status != "active":
            delivery.status, delivery.next_attempt_at = "abandoned", None
        else:
            delivery.status = "pending"
            delivery.next_attempt_at = func.now() + RETRY_DELAYS[delivery.attempts - 1]
    await session.flush()
    return delivery.status


async def _disable_for_failures(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    reason = f"{endpoint.consecutive_failures} delivery attempts in a row failed"
    await _disable(session, endpoint, reason)
    endpoint.updated_at = func.now()
    log.warning("webhooks.endpoint_disabled", tenant_id=endpoint.tenant_id, endpoint_id=endpoint.id, reason=reason)
    await add_event(session, tenant_id=endpoint.tenant_id, aggregate_type="webhook_endpoint",
                    aggregate_id=endpoint.id, event_type="webhook_endpoint.disabled",
                    payload={"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason})


async def due_deliveries(session: AsyncSession, limit: int) -> list[tuple[int, int]]:
    """(tenant_id, delivery_id) of pending deliveries whose next attempt is due, the longest-waiting first."""
    rows = await session.execute(
        select(WebhookDelivery.tenant_id, WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= func.now())
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return [(row.tenant_id, row.id) for row in rows]
