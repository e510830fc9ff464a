"""Helpers for tests that call the HTTP API."""

import uuid


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def idem() -> dict[str, str]:
    return {"idempotency-key": uuid.uuid4().hex}
