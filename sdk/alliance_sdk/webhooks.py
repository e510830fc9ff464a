"""Verifying the webhooks Alliance sends, per the Standard Webhooks spec (https://www.standardwebhooks.com).

Each delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`: space-separated
`v1,<base64 HMAC-SHA256>` entries (more than one while a secret rotates) over `{id}.{timestamp}.{body}`.

    event = webhooks.verify(request.body, request.headers, secret="whsec_...")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from alliance_sdk._errors import AllianceError

SECRET_PREFIX = "whsec_"


class WebhookVerificationError(AllianceError):
    """The delivery is not provably from Alliance, or not recent: answer 400 and do not act on it."""


def verify(payload: bytes, headers: Mapping[str, str], secret: str, tolerance: int = 300) -> dict[str, Any]:
    """Returns the parsed event once its signature and timestamp check out; raises WebhookVerificationError.

    Pass the body exactly as received (bytes, before any JSON parsing). `tolerance` is how many seconds the
    timestamp may be off the local clock, either way: it bounds how long a captured delivery can be replayed."""
    key = _secret_key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (message_id and timestamp and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a Unix time in seconds") from None
    now = time.time()
    if sent_at < now - tolerance:
        raise WebhookVerificationError("webhook-timestamp is too old")
    if sent_at > now + tolerance:
        raise WebhookVerificationError("webhook-timestamp is in the future")

    expected = hmac.new(key, f"{message_id}.{timestamp}.".encode() + payload, hashlib.sha256).digest()
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(expected, candidate):
            return json.loads(payload)
    raise WebhookVerificationError("no matching signature")


def _secret_key(secret: str) -> bytes:
    # A wrong secret is the receiver's configuration error, not a bad delivery: it fails loudly.
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)  # padding may be left off
    except binascii.Error:
        raise ValueError(f"the webhook secret must be {SECRET_PREFIX}<base64>") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key
