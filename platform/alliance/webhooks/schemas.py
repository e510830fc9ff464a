"""The webhook API's request and response bodies. Constraints live in the types, so bad input is refused
with a validation_error before any service runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from msgspec import UNSET, Meta, Struct, UnsetType

from alliance.webhooks import EVENT_TYPES, EventType

# http(s), a host, no credentials (they would be stored in clear): a receiver authenticates us by the signature.
Url = Annotated[str, Meta(max_length=2048, pattern=r"^https?://[^\s/?#@]+([/?#]\S*)?$",
                          description="http(s) URL that receives the POSTs")]
Description = Annotated[str, Meta(max_length=500)]
EventTypes = Annotated[list[EventType], Meta(max_length=len(EVENT_TYPES), description="empty: every event type")]


def _check_host_and_port(url: str) -> None:
    parts = urlsplit(url)
    # Reading the port raises ValueError (a validation_error) when it is not a number up to 65535.
    if not parts.hostname or parts.port == 0:
        raise ValueError("the URL needs a host, and a port (if any) from 1 to 65535")


class EndpointCreate(Struct, forbid_unknown_fields=True):
    url: Url
    description: Description | None = None
    event_types: EventTypes = []

    def __post_init__(self) -> None:
        _check_host_and_port(self.url)


class EndpointUpdate(Struct, forbid_unknown_fields=True):
    url: Url | UnsetType = UNSET
    description: Description | None | UnsetType = UNSET
    event_types: EventTypes | UnsetType = UNSET
    # active re-enables a disabled endpoint (its failure count starts again); disabled stops deliveries.
    status: Literal["active", "disabled"] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.url is not UNSET:
            _check_host_and_port(self.url)


class EndpointRead(Struct):
    id: int
    url: str
    description: str | None
    event_types: list[str]
    status: str
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime


class EndpointCreated(EndpointRead):
    secret: str = ""  # the signing secret "whsec_…": shown this once


class DeliveryRead(Struct):
    id: int
    endpoint_id: int
    event_id: int
    event_type: str
    status: str  # pending, succeeded, failed (out of attempts), abandoned (its endpoint was disabled)
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


class DeliveryPage(Struct):
    data: list[DeliveryRead]
    next_cursor: str | None = None
