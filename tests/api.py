"""Helpers for tests that call the HTTP API."""

import uuid


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def idem() -> dict[str, str]:
    return {"idempotency-key": uuid.uuid4().hex}


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    return response.json()
