"""Verification of signed requests: the SDK signs (a detached compact JWS over the exact body), the server
verifies with joserfc. Every refusal has its own code; keys rotate with overlap; a signature is accepted once,
in the transaction of the change it signs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from alliance_sdk import signing

from alliance.db.tenancy import in_tenant_transaction
from alliance.errors import ProblemError
from exchange.signing import service
from tests.exchange.signing.conftest import BODY, PATH, sign


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def refused(call, status: int, code: str) -> ProblemError:
    with pytest.raises(ProblemError) as caught:
        await call
    assert (caught.value.status, caught.value.code) == (status, code), caught.value.detail
    return caught.value


@pytest.fixture
async def brand(onboard, register_key):
    tenant, headers = await onboard()
    return tenant["id"], headers, await register_key(headers, "k1")


async def test_a_signed_request_verifies_and_returns_what_to_store(brand, verify, pool):
    tenant_id, _, key = brand
    signature = sign(key, kid="k1", tenant=tenant_id)
    signed = await verify(tenant_id, signature)
    assert (signed.tenant_id, signed.kid, signed.body, signed.signature) == (tenant_id, "k1", BODY, signature)
    assert signed.header == {"alg": "EdDSA", "kid": "k1", "alliance_tenant": tenant_id, "method": "POST",
                             "path": PATH, "iat": signed.header["iat"], "jti": signed.header["jti"]}
    assert abs(signed.issued_at.timestamp() - time.time()) < 5
    digest = hashlib.sha256(unb64(signature.split(".")[2])).digest()
    assert signed.digest == digest
    assert await pool.fetchval("SELECT expires_at FROM seen_signatures WHERE tenant_id = $1 AND digest = $2",
                               tenant_id, digest) == signed.issued_at + service.MAX_AGE
    # An empty body is signed and verified as such.
    assert (await verify(tenant_id, sign(key, kid="k1", tenant=tenant_id, body=b""), body=b"")).body == b""


async def test_a_missing_signature(brand, verify):
    tenant_id, _, _ = brand
    for signature in (None, ""):
        await refused(verify(tenant_id, signature), 401, "signature_missing")


def forged(header: dict, signature: str = "A" * 86, payload: str = "") -> str:
    return f"{b64(json.dumps(header).encode())}.{payload}.{signature}"


async def test_malformed_signatures(brand, verify):
    tenant_id, _, key = brand
    good = sign(key, kid="k1", tenant=tenant_id)
    header = json.loads(unb64(good.split(".")[0]))
    for signature in (
        "not a jws", "a.b", "a.b.c.d", "é..x", "x" * 5000,
        f"{good.split('.')[0]}.{b64(BODY)}.{good.split('.')[2]}",  # the payload attached, not detached
        "!!!.." + good.split(".")[2],  # the header is not base64url
        b64(b"[1]") + ".." + good.split(".")[2], b64(b'"alg"') + ".." + good.split(".")[2],  # not an object
        forged({**header, "alg": "HS256"}), forged({**header, "alg": "none"}), forged({**header, "alg": "Ed25519"}),
        forged({k: v for k, v in header.items() if k != "iat"}),
        forged({k: v for k, v in header.items() if k != "kid"}),
        forged({k: v for k, v in header.items() if k != "alliance_tenant"}),
        forged({**header, "iat": "now"}), forged({**header, "iat": True}), forged({**header, "kid": "a b"}),
        forged({**header, "alliance_tenant": str(tenant_id)}),
        forged({**header, "jwk": {"kty": "OKP"}}), forged({**header, "b64": False, "crit": ["b64"]}),
        forged(header, signature="A" * 40), forged(header, signature="***"),
    ):
        await refused(verify(tenant_id, signature), 400, "signature_malformed")


async def test_a_signature_for_another_tenant_method_or_path(brand, onboard, register_key, verify):
    tenant_id, _, key = brand
    error = await refused(verify(tenant_id, sign(key, kid="k1", tenant=tenant_id + 1000)), 403,
                          "signature_wrong_tenant")
    assert error.extra["mismatched"] == ["tenant"]
    error = await refused(verify(tenant_id, sign(key, kid="k1", tenant=tenant_id, method="PUT")), 403,
                          "signature_wrong_tenant")
    assert error.extra["mismatched"] == ["method"]
    error = await refused(verify(tenant_id, sign(key, kid="k1", tenant=tenant_id, path="/v1/conversions/9")),
                          403, "signature_wrong_tenant")
    assert error.extra["mismatched"] == ["path"]
    # Brand B's key, claiming to sign for A: the kid is B's, not A's.
    other, other_headers = await onboard()
    other_key = await register_key(other_headers, "b-only")
    error = await refused(verify(tenant_id, sign(other_key, kid="b-only", tenant=tenant_id)), 403,
                          "signature_wrong_tenant")
    assert error.extra["mismatched"] == ["key"]
    # B's own request with B's key is fine.
    await verify(other["id"], sign(other_key, kid="b-only", tenant=other["id"]))


async def test_an_unknown_key(brand, verify):
    tenant_id, _, key = brand
    error = await refused(verify(tenant_id, sign(key, kid="k9", tenant=tenant_id)), 401, "signing_key_unknown")
    assert error.extra["kid"] == "k9"


async def test_tampered_body_or_header_or_another_key(brand, verify):
    tenant_id, _, key = brand
    signature = sign(key, kid="k1", tenant=tenant_id)
    await refused(verify(tenant_id, signature, body=BODY.replace(b"100", b"900")), 401, "signature_invalid")
    await refused(verify(tenant_id, signature, body=BODY + b" "), 401, "signature_invalid")
    encoded_header, _, encoded_signature = signature.split(".")
    header = json.loads(unb64(encoded_header))
    await refused(verify(tenant_id, forged({**header, "iat": header["iat"] + 1}, encoded_signature)), 401,
                  "signature_invalid")
    flipped = bytearray(unb64(encoded_signature))
    flipped[0] ^= 1
    await refused(verify(tenant_id, f"{encoded_header}..{b64(bytes(flipped))}"), 401, "signature_invalid")
    stranger, _ = signing.generate_signing_key()
    await refused(verify(tenant_id, sign(stranger, kid="k1", tenant=tenant_id)), 401, "signature_invalid")
    # None of the refusals consumed the genuine signature.
    await verify(tenant_id, signature)


async def test_a_revoked_key(brand, client, verify):
    tenant_id, headers, key = brand
    assert (await client.post("/v1/signing-keys/k1/revoke", headers=headers)).status_code == 200
    await refused(verify(tenant_id, sign(key, kid="k1", tenant=tenant_id)), 401, "signing_key_revoked")


async def test_a_key_outside_its_window(onboard, register_key, verify):
    tenant, headers = await onboard()
    now = datetime.now(UTC)
    ending = await register_key(headers, "ending", not_after=(now + timedelta(hours=1)).isoformat())
    starting = await register_key(headers, "starting", not_before=(now + timedelta(hours=1)).isoformat())
    await refused(verify(tenant["id"], sign(starting, kid="starting", tenant=tenant["id"])), 401,
                  "signing_key_not_valid_now")
    later = now + timedelta(hours=2)
    signature = sign(ending, kid="ending", tenant=tenant["id"], iat=int(later.timestamp()))
    await refused(verify(tenant["id"], signature, now=later), 401, "signing_key_not_valid_now")


async def test_stale_and_future_signatures(brand, verify):
    tenant_id, _, key = brand
    now = int(time.time())
    await refused(verify(tenant_id, sign(key, kid="k1", tenant=tenant_id, iat=now - 301)), 401, "signature_stale")
    await refused(verify(tenant_id, sign(key, kid="k1", tenant=tenant_id, iat=now + 120)), 401, "signature_stale")
    await refused(verify(tenant_id, sign(key, kid="k1", tenant=tenant_id, iat=2**62)), 401, "signature_stale")
    await verify(tenant_id, sign(key, kid="k1", tenant=tenant_id, iat=now - 290))
    await verify(tenant_id, sign(key, kid="k1", tenant=tenant_id, iat=now + 30))


async def test_a_replayed_signature(brand, verify, onboard):
    tenant_id, _, key = brand
    signature = sign(key, kid="k1", tenant=tenant_id)
    await verify(tenant_id, signature)
    await refused(verify(tenant_id, signature), 409, "signature_replayed")
    # Past its window a replay is stale, whatever the seen-table holds.
    later = datetime.now(UTC) + service.MAX_AGE + timedelta(seconds=1)
    await refused(verify(tenant_id, signature, now=later), 401, "signature_stale")


async def test_a_signature_is_consumed_only_with_the_callers_change(brand, db, verify):
    tenant_id, _, key = brand
    signature = sign(key, kid="k1", tenant=tenant_id)

    class CallerFailed(Exception):
        pass

    async def verify_then_fail(session):
        await service.verify_signed_request(session, tenant_id=tenant_id, method="POST", path=PATH, body=BODY,
                                            signature=signature)
        raise CallerFailed

    with pytest.raises(CallerFailed):
        await in_tenant_transaction(db.sessions, tenant_id, verify_then_fail)
    await verify(tenant_id, signature)  # the rolled-back use did not count


async def test_racing_uses_of_one_signature_accept_exactly_one(brand, verify):
    tenant_id, _, key = brand
    signature = sign(key, kid="k1", tenant=tenant_id)
    results = await asyncio.gather(*(verify(tenant_id, signature) for _ in range(8)), return_exceptions=True)
    accepted = [r for r in results if isinstance(r, service.SignedRequest)]
    assert len(accepted) == 1, results
    assert {(r.status, r.code) for r in results if r not in accepted} == {(409, "signature_replayed")}


async def test_keys_rotate_with_overlap(onboard, register_key, client, verify):
    tenant, headers = await onboard()
    tenant_id, now = tenant["id"], datetime.now(UTC)
    old = await register_key(headers, "2025-old", not_after=(now + timedelta(hours=2)).isoformat())
    new = await register_key(headers, "2025-new", not_before=(now + timedelta(hours=1)).isoformat())

    def at(moment: datetime, private: str, kid: str) -> str:
        return sign(private, kid=kid, tenant=tenant_id, iat=int(moment.timestamp()))

    await verify(tenant_id, at(now, old, "2025-old"))
    overlap = now + timedelta(minutes=90)  # both keys valid
    assert (await verify(tenant_id, at(overlap, old, "2025-old"), now=overlap)).kid == "2025-old"
    assert (await verify(tenant_id, at(overlap, new, "2025-new"), now=overlap)).kid == "2025-new"
    after = now + timedelta(hours=3)  # only the new one
    await refused(verify(tenant_id, at(after, old, "2025-old"), now=after), 401, "signing_key_not_valid_now")
    await verify(tenant_id, at(after, new, "2025-new"), now=after)


async def test_after_revoking_one_of_two_valid_keys_only_the_other_verifies(brand, register_key, client, verify):
    tenant_id, headers, first = brand
    second = await register_key(headers, "k2")
    await verify(tenant_id, sign(first, kid="k1", tenant=tenant_id))
    await verify(tenant_id, sign(second, kid="k2", tenant=tenant_id))
    await client.post("/v1/signing-keys/k1/revoke", headers=headers)
    await refused(verify(tenant_id, sign(first, kid="k1", tenant=tenant_id, body=b"{}"), body=b"{}"), 401,
                  "signing_key_revoked")
    await verify(tenant_id, sign(second, kid="k2", tenant=tenant_id, body=b"{}"), body=b"{}")


async def test_seen_signatures_past_their_window_are_pruned(brand, db, verify, pool):
    from alliance.db import run_in_transaction

    tenant_id, _, key = brand
    signed = await verify(tenant_id, sign(key, kid="k1", tenant=tenant_id))
    later = datetime.now(UTC) + service.MAX_AGE + timedelta(seconds=1)
    assert await run_in_transaction(db.sessions, lambda s: service.prune_seen_signatures(s, later)) >= 1
    assert await pool.fetchval("SELECT count(*) FROM seen_signatures WHERE digest = $1", signed.digest) == 0


async def test_the_scheduler_prunes_seen_signatures(brand, db, pool):
    from alliance.app import domain_schedules
    from alliance.db import run_in_transaction
    from exchange.signing.tasks import prune_seen_signatures

    tenant_id, _, _ = brand
    stale, fresh = os.urandom(32), os.urandom(32)
    await pool.executemany("INSERT INTO seen_signatures (tenant_id, digest, expires_at) VALUES ($1, $2, $3)",
                           [(tenant_id, stale, datetime.now(UTC) - timedelta(seconds=1)),
                            (tenant_id, fresh, datetime.now(UTC) + timedelta(minutes=5))])
    assert await run_in_transaction(db.sessions, prune_seen_signatures) >= 1
    left = {r[0] for r in await pool.fetch("SELECT digest FROM seen_signatures WHERE tenant_id = $1", tenant_id)}
    assert fresh in left and stale not in left
    assert "prune_seen_signatures" in {schedule.name for schedule in domain_schedules()}
