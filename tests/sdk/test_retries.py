"""Retries: which failures are retried, how long the client waits, and that a value-moving call keeps its
idempotency key across attempts, so the server applies it once."""

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal

import alliance_sdk as sdk
import httpx
import pytest
from alliance_sdk import Alliance, AsyncAlliance, signing
from alliance_sdk import _base as base
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.sdk.transports import LoseFirstResponse, problem, scripted


def test_a_retry_after_a_lost_response_applies_the_credit_once(brand: Alliance, brand_key: str, base_url: str):
    brand.members.upsert("dave")
    transport = LoseFirstResponse()
    with Alliance(api_key=brand_key, base_url=base_url, http_client=httpx.Client(transport=transport)) as flaky:
        credit = flaky.members.credit("dave", 70, reason="purchase")
    assert credit.balances == {"dave": 70}
    assert len(transport.sent) == 2
    assert transport.sent[0].headers["idempotency-key"] == transport.sent[1].headers["idempotency-key"]
    assert brand.members.balance("dave").balance == 70
    assert [item.amount for item in brand.members.history("dave")] == [70]


async def test_rate_limited_calls_wait_for_retry_after(async_brand: AsyncAlliance, brand_key, base_url, rate_limit):
    await async_brand.members.upsert("erin")
    answers: list[tuple[int, float]] = []

    async def record(response: httpx.Response) -> None:
        answers.append((response.status_code, time.monotonic()))

    rate_limit(1)
    http = httpx.AsyncClient(event_hooks={"response": [record]})
    async with AsyncAlliance(api_key=brand_key, base_url=base_url, http_client=http) as client:
        for _ in range(5):  # one call a second passes: the second call in a second is refused, then retried
            assert (await client.members.retrieve("erin")).external_id == "erin"
            if any(status == 429 for status, _ in answers):
                break
    await http.aclose()
    refused = next(i for i, (status, _) in enumerate(answers) if status == 429)
    assert answers[refused + 1][0] == 200
    assert answers[refused + 1][1] - answers[refused][1] >= 0.9  # the server said Retry-After: 1


# --- the policy, on scripted answers -------------------------------------------------------------------


OPERATION = {"entry": {"id": 7, "kind": "credit", "created_at": "2026-01-01T00:00:00Z", "metadata": {},
                       "postings": [{"account": "member:alice", "amount": 5, "balance_after": 5}]},
             "balances": [{"member": "alice", "balance": 5}]}


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "INITIAL_RETRY_DELAY", 0.001)


@pytest.mark.parametrize("failure", [
    problem(503, "internal_error", {"retry-after": "0"}),
    problem(500, "internal_error"),
    problem(429, "rate_limited", {"retry-after": "0"}),
    problem(409, "conflict"),
    httpx.ConnectError("refused"),
    httpx.ReadTimeout("slow"),
])
def test_transient_failures_are_retried_with_the_same_idempotency_key(failure):
    client, sent = scripted(failure, httpx.Response(201, json=OPERATION))
    assert client.members.credit("alice", 5, reason="purchase").entry.id == 7
    assert len(sent) == 2 and sent[0].headers["idempotency-key"] == sent[1].headers["idempotency-key"]


@pytest.mark.parametrize(("failure", "error"), [
    (problem(400, "bad_request"), sdk.BadRequestError),
    (problem(409, "member_frozen"), sdk.MemberFrozenError),
    (problem(409, "idempotency_key_reused"), sdk.IdempotencyKeyReusedError),
    (problem(422, "insufficient_points"), sdk.InsufficientPointsError),
    (problem(404, "no_such_code_yet"), sdk.NotFoundError),
    (problem(401, "signature_stale"), sdk.SignatureStaleError),
    (problem(418, "teapot"), sdk.APIStatusError),
])
def test_other_client_errors_are_final(failure, error):
    client, sent = scripted(failure, httpx.Response(201, json=OPERATION))
    with pytest.raises(error) as raised:
        client.members.credit("alice", 5, reason="purchase")
    assert len(sent) == 1 and raised.value.request_id == "req-1"


def test_retries_stop_after_max_retries():
    client, sent = scripted(httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(sdk.InternalServerError) as raised:
        client.members.retrieve("alice")
    assert len(sent) == 3 and raised.value.code is None and raised.value.problem == {}

    client, sent = scripted(httpx.ConnectTimeout("slow"))
    client.max_retries = 0
    with pytest.raises(sdk.APITimeoutError):
        client.members.retrieve("alice")
    assert len(sent) == 1


def test_a_given_idempotency_key_is_sent_and_a_generated_one_is_fresh_per_call():
    client, sent = scripted(httpx.Response(201, json=OPERATION))
    client.members.credit("alice", 5, reason="purchase", idempotency_key="order-42")
    client.members.credit("alice", 5, reason="purchase")
    client.members.credit("alice", 5, reason="purchase")
    keys = [request.headers["idempotency-key"] for request in sent]
    assert keys[0] == "order-42" and len(set(keys)) == 3
    assert sent[0].headers["authorization"] == "Bearer alk_test"


def test_retry_after_is_honoured_within_reason():
    assert base._retry_after(httpx.Response(429, headers={"retry-after": "2"})) == 2.0
    assert base._retry_after(httpx.Response(429, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert base._retry_after(httpx.Response(429, headers={"retry-after": "3600"})) is None  # backoff instead
    assert base._retry_after(httpx.Response(429)) is None


def test_the_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(sdk.AllianceError, match="API key"):
        Alliance()
    monkeypatch.setenv("ALLIANCE_API_KEY", "alk_env")
    monkeypatch.setenv("ALLIANCE_BASE_URL", "https://alliance.example/")
    monkeypatch.setenv("ALLIANCE_SIGNING_KEY", "-----BEGIN PRIVATE KEY-----...")
    monkeypatch.setenv("ALLIANCE_SIGNING_KID", "2025-01")
    with Alliance() as client:
        assert (client.api_key, client.base_url) == ("alk_env", "https://alliance.example")
        assert (client.signing_key, client.signing_kid) == ("-----BEGIN PRIVATE KEY-----...", "2025-01")
        assert "alk_env" not in repr(client) and "PRIVATE" not in repr(client)


def test_a_retried_bulk_request_sends_the_same_item_keys(brand: Alliance, brand_key: str, base_url: str):
    brand.members.upsert("dave")
    transport = LoseFirstResponse()
    with Alliance(api_key=brand_key, base_url=base_url, http_client=httpx.Client(transport=transport)) as flaky:
        [result] = flaky.bulk.apply([{"kind": "credit", "member": "dave", "amount": 70, "reason": "import"}])
    assert transport.sent[0].content == transport.sent[1].content
    assert result.status == "replayed"  # the lost first attempt applied it
    assert brand.members.balance("dave").balance == 70


CONVERSION = {
    "id": 42, "status": "committed", "role": "source", "member": "alice",
    "counterparty_identity": "idn_abcdefghijklmnop",
    "source_brand": "coffee", "target_brand": "airline", "source_amount": 100, "fee_amount": 1, "target_amount": 198,
    "rate": "2", "remainder": "0", "source_point_value": "0.1", "target_point_value": "0.05", "currency": "CNY",
    "gross_value": "10", "fee_value": "0.1", "net_value": "9.9", "quote_id": None,
    "expires_at": "2026-01-01T00:01:00Z", "created_at": "2026-01-01T00:00:00Z", "committed_at": "2026-01-01T00:00:30Z",
    "resolved_at": "2026-01-01T00:00:30Z", "abort_reason": None, "entry_id": 9, "window_id": 1,
    "countersignature": "eyJ.eyJ.sig", "replayed": True,
}


def test_a_replayed_signature_is_retried_signed_afresh_with_the_same_idempotency_key():
    private_key, public_jwk = signing.generate_signing_key()
    client, sent = scripted(problem(409, "signature_replayed"), httpx.Response(200, json=CONVERSION),
                            signing_key=private_key, signing_kid="2025-01", tenant_id=7)
    conversion = client.conversions.commit(42)
    assert (conversion.status, conversion.replayed, conversion.net_value) == ("committed", True, Decimal("9.9"))
    first, retry = sent
    assert first.headers["idempotency-key"] == retry.headers["idempotency-key"]
    assert first.headers[signing.SIGNATURE_HEADER] != retry.headers[signing.SIGNATURE_HEADER]
    public_key = Ed25519PublicKey.from_public_bytes(unb64(public_jwk["x"]))
    for request in sent:
        encoded_header, payload, signature = request.headers[signing.SIGNATURE_HEADER].split(".")
        header = json.loads(unb64(encoded_header))
        assert (header["alliance_tenant"], header["kid"], header["method"], header["path"], payload) == (
            7, "2025-01", "POST", "/v1/conversions/42/commit", "")
        # Detached: the signature covers the body bytes as sent.
        public_key.verify(unb64(signature), f"{encoded_header}.{b64(request.content)}".encode())
        assert request.content == b"{}"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
