"""Webhook verification, checked against signatures made by the reference `standardwebhooks` library."""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import UTC, datetime

import pytest
from alliance_sdk import AllianceError, WebhookVerificationError, webhooks
from standardwebhooks import Webhook

SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()
EVENT = {"type": "points.credited", "data": {"member": "alice", "amount": 100}}
PAYLOAD = json.dumps(EVENT).encode()


def delivery(payload: bytes = PAYLOAD, *, secret: str = SECRET, sent_at: float | None = None,
             message_id: str = "msg_2b1c") -> dict[str, str]:
    sent_at = time.time() if sent_at is None else sent_at
    signature = Webhook(secret).sign(message_id, datetime.fromtimestamp(sent_at, UTC), payload.decode())
    return {"webhook-id": message_id, "webhook-timestamp": str(int(sent_at)), "webhook-signature": signature}


def test_a_genuine_delivery_verifies_and_parses():
    assert webhooks.verify(PAYLOAD, delivery(), SECRET) == EVENT
    # Header names are case-insensitive, as HTTP frameworks hand them over either way.
    assert webhooks.verify(PAYLOAD, {k.title(): v for k, v in delivery().items()}, SECRET) == EVENT


def test_any_matching_v1_signature_passes_while_a_secret_rotates():
    headers = delivery()
    old = delivery(secret="whsec_" + base64.b64encode(os.urandom(24)).decode())["webhook-signature"]
    headers["webhook-signature"] = f"v2,abc {old} v1,not-base64! {headers['webhook-signature']}"
    assert webhooks.verify(PAYLOAD, headers, SECRET) == EVENT


def test_an_unpadded_secret_works_like_the_reference():
    unpadded = "whsec_" + base64.b64encode(os.urandom(20)).decode().rstrip("=")
    assert webhooks.verify(PAYLOAD, delivery(secret=unpadded), unpadded) == EVENT


def test_a_tampered_body_fails():
    tampered = PAYLOAD.replace(b"100", b"900")
    with pytest.raises(WebhookVerificationError, match="signature"):
        webhooks.verify(tampered, delivery(), SECRET)


def test_another_secret_fails():
    other = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(PAYLOAD, delivery(secret=other), SECRET)


def test_a_changed_id_or_timestamp_fails():
    headers = delivery()
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(PAYLOAD, {**headers, "webhook-id": "msg_other"}, SECRET)
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(PAYLOAD, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)},
                        SECRET)


@pytest.mark.parametrize("offset", [-301, 301], ids=["stale", "future"])
def test_timestamps_outside_the_tolerance_fail_either_way(offset: int):
    with pytest.raises(WebhookVerificationError, match="timestamp"):
        webhooks.verify(PAYLOAD, delivery(sent_at=time.time() + offset), SECRET)
    assert webhooks.verify(PAYLOAD, delivery(sent_at=time.time() + offset), SECRET, tolerance=600) == EVENT
    assert webhooks.verify(PAYLOAD, delivery(sent_at=time.time() + offset / 2), SECRET) == EVENT


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_fails(header: str):
    headers = delivery()
    del headers[header]
    with pytest.raises(WebhookVerificationError, match="missing"):
        webhooks.verify(PAYLOAD, headers, SECRET)


def test_a_malformed_timestamp_fails():
    with pytest.raises(WebhookVerificationError, match="Unix time"):
        webhooks.verify(PAYLOAD, {**delivery(), "webhook-timestamp": "yesterday"}, SECRET)


def test_a_malformed_secret_is_a_configuration_error_not_a_bad_delivery():
    with pytest.raises(ValueError, match="whsec_"):
        webhooks.verify(PAYLOAD, delivery(), "whsec_not base64!")
    assert issubclass(WebhookVerificationError, AllianceError)
