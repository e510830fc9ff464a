"""httpx transports that misbehave on purpose or play scripted answers, shared by the SDK's tests."""

from __future__ import annotations

from typing import Any

import httpx
from alliance_sdk import Alliance


class LoseFirstResponse(httpx.HTTPTransport):
    """Delivers every request, but loses the first response (to a `method` request, if given) on its way back,
    like a connection reset after the server has committed."""

    def __init__(self, method: str | None = None) -> None:
        super().__init__()
        self.method = method
        self.sent: list[httpx.Request] = []
        self.lost = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.sent.append(request)
        if not self.lost and self.method in (None, request.method):
            self.lost = True
            response.close()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


def scripted(*answers: httpx.Response | Exception, **options: Any) -> tuple[Alliance, list[httpx.Request]]:
    """A client (made with `options`) whose transport plays `answers` in order (the last one again once they
    run out)."""
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        answer = answers[min(len(sent), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = Alliance(api_key="alk_test", base_url="http://alliance.test",
                      http_client=httpx.Client(transport=httpx.MockTransport(handle)), **options)
    return client, sent


def problem(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"type": f"urn:alliance:problem:{code}", "code": code, "title": code,
                                        "status": status}, headers={"x-request-id": "req-1", **(headers or {})})
