"""Settlement's test helpers: the operator's calls over HTTP, a day of one conversion, a conversion tampered with so
that a check fails, and statements verified independently."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from jwcrypto import jwk, jws

Closed = TypeVar("Closed")


async def close(admin) -> dict:
    """Cuts the open window off (POST …/windows/close); returns the window closed."""
    return await admin("POST", "/v1/admin/settlement/windows/close", {})


async def compute(admin, window_id: int) -> dict:
    return await admin("POST", f"/v1/admin/settlement/windows/{window_id}/compute")


async def settlement(admin, window_id: int) -> dict:
    return await admin("GET", f"/v1/admin/settlement/windows/{window_id}")


async def one_conversion_day(close_window: Callable[[], Awaitable[Closed]], convert,
                             coffee_and_airline) -> tuple[Closed, dict]:
    """Closes the open window (the one other tests converted in: this test's day starts now), converts 1,000 of
    alice's beans into miles and closes that day; returns what `close_window` returned for the day, and the
    conversion."""
    coffee, airline, _, _ = coffee_and_airline
    await close_window()
    converted = (await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 1000})).json()
    return await close_window(), converted


async def shift_source_amount(pool, conversion_id: int, by: int) -> None:
    """Moves a conversion record's source amount by `by` points: a record that no longer agrees with its journal
    entries (and, shifted back, one that agrees again)."""
    await pool.execute("UPDATE exchange_conversions SET source_amount = source_amount + $2 WHERE id = $1",
                       conversion_id, by)


def verify_statement(content: bytes, signature: str, jwks: dict) -> None:
    """The platform's detached JWS over the statement, checked by jwcrypto (an independent implementation)."""
    token = jws.JWS()
    token.deserialize(signature)
    token.verify(jwk.JWKSet.from_json(json.dumps(jwks)).get_key(token.jose_header["kid"]), alg="EdDSA",
                 detached_payload=content)
