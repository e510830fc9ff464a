"""Retries: which failures are retried, how long the client waits, and that a value-moving call keeps its
idempotency key across attempts, so the server applies it once."""

from __future__ import annotations

import time

import alliance_sdk as sdk
import httpx
import pytest
from alliance_sdk import Alliance, AsyncAlliance
from alliance_sdk import _base as base


class LoseFirstResponse(httpx.HTTPTransport):
    """Delivers every request, but loses the first response on its way back, like a connection reset after
    the server has committed."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.sent.append(request)
        if len(self.sent) == 1:
            response.close()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


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


def scripted(*answers: httpx.Response | Exception) -> tuple[Alliance, list[httpx.Request]]:
    """A client whose transport plays `answers` in order (the last one again once they run out)."""
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        answer = answers[min(len(sent), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = Alliance(api_key="alk_test", base_url="http://alliance.test",
                      http_client=httpx.Client(transport=httpx.MockTransport(handle)))
    return client, sent


def problem(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"type": f"urn:alliance:problem:{code}", "code": code, "title": code,
                                        "status": status}, headers={"x-request-id": "req-1", **(headers or {})})


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
    with Alliance() as client:
        assert (client.api_key, client.base_url) == ("alk_env", "https://alliance.example")
        assert "alk_env" not in repr(client)


def test_a_retried_bulk_request_sends_the_same_item_keys(brand: Alliance, brand_key: str, base_url: str):
    brand.members.upsert("dave")
    transport = LoseFirstResponse()
    with Alliance(api_key=brand_key, base_url=base_url, http_client=httpx.Client(transport=transport)) as flaky:
        [result] = flaky.bulk.apply([{"kind": "credit", "member": "dave", "amount": 70, "reason": "import"}])
    assert transport.sent[0].content == transport.sent[1].content
    assert result.status == "replayed"  # the lost first attempt applied it
    assert brand.members.balance("dave").balance == 70
