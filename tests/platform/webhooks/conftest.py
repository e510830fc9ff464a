"""Webhooks end to end: the brand API (an app on the test database), the outbox relay and the delivery task
called directly, and a real HTTP receiver on a free local port that records what it is sent."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alliance.db import run_in_transaction
from alliance.webhooks.tasks import deliver


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A brand's webhook receiver: answers each path with the statuses queued for it, then with 204."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._statuses: dict[str, deque[int]] = defaultdict(deque)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    queued = receiver._statuses[self.path]
                    status = queued.popleft() if queued else 204
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def answer(self, path: str, *statuses: int) -> None:
        with self._lock:
            self._statuses[path].extend(statuses)

    def at(self, path: str = "/hooks") -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def attempt(db):
    """One attempt at a delivery, as the worker would run it; returns the delivery's status after it (None:
    it was not due)."""

    async def run(tenant_id: int, delivery_id: int) -> str | None:
        return await run_in_transaction(
            db.sessions, lambda s: deliver(s, tenant_id=tenant_id, delivery_id=delivery_id)
        )

    return run


@pytest.fixture
def make_due(pool):
    """Lets a delivery's backoff pass at once."""

    async def run(delivery_id: int) -> None:
        await pool.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = $1 AND status = 'pending'", delivery_id
        )

    return run



@pytest.fixture
def brand(client, onboard):
    """Admits a brand with a member "alice" and returns (tenant, headers of its key)."""

    async def admit() -> tuple[dict, dict[str, str]]:
        tenant, headers = await onboard()
        created = await client.post("/v1/members", json={"external_id": "alice"}, headers=headers)
        assert created.status_code == 201, created.text
        return tenant, headers

    return admit


@pytest.fixture
def register(client):
    """Registers a webhook endpoint of a brand; returns it as created (with its secret)."""

    async def create(headers: dict[str, str], url: str, **body) -> dict:
        created = await client.post("/v1/webhook-endpoints", json={"url": url, **body}, headers=headers)
        assert created.status_code == 201, created.text
        return created.json()

    return create


@pytest.fixture
def deliveries(client):
    """An endpoint's delivery log through the API, newest first."""

    async def read(headers: dict[str, str], endpoint_id: int, **params) -> list[dict]:
        page = await client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", params=params, headers=headers)
        assert page.status_code == 200, page.text
        return page.json()["data"]

    return read
