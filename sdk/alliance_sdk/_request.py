"""A call to the API as plain data, and the helpers resources use to describe one."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

# The header of a signature: the brand's over a request it sends, the platform's over a statement file it serves.
SIGNATURE_HEADER = "Alliance-Signature"


class NotGiven:
    """Marks an argument the caller left out, where None is a value of its own (None clears a field)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


@dataclass(frozen=True, slots=True)
class APIRequest:
    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    # Set on value-moving calls; sent unchanged on every retry, so the server applies the call once.
    idempotency_key: str | None = None
    # Signed with the brand's signing key (Alliance-Signature) over the exact body bytes, afresh on every attempt:
    # the platform accepts a signature once.
    signed: bool = False
    # The answer is a file, not JSON: the parse gets the whole httpx.Response, its bytes and its headers.
    raw: bool = False


def json_bytes(body: Any) -> bytes:
    """The body as sent: serialized here, not by httpx, so that what is signed is byte for byte what is sent."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def path(*segments: str | int) -> str:
    """"/"-joined segments, each percent-encoded: an external id is data, never part of the route."""
    return "/" + "/".join(quote(str(segment), safe="") for segment in segments)


def new_idempotency_key(given: str | None) -> str:
    return given or str(uuid.uuid4())


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value!r} is naive: pass a timezone-aware datetime")
        return value.isoformat()
    if isinstance(value, date | Decimal):
        return str(value)
    return value


def fields(omit: object = None, **values: Any) -> dict[str, Any]:
    """The values worth sending, JSON-ready. `omit` is what "left out" looks like: None for most calls,
    NOT_GIVEN where None means "clear this field"."""
    return {name: jsonable(value) for name, value in values.items() if value is not omit}
