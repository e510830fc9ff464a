"""The signatures on conversion requests, end to end: every refusal has its own code and moves nothing; a signature
is accepted once; keys rotate with overlap; a revocation applies at once, even to a key the API has cached; the
platform's countersignature verifies with an independent JWS implementation (jwcrypto) against its JWKS."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alliance_sdk import signing
from jwcrypto import jwk, jws

from tests.api import assert_problem
from tests.exchange_fixtures import b64, balance, jwks_of, signed_request, unb64

PATH = "/v1/conversions"


def body_for(airline) -> dict:
    return {"member": "alice", "to_brand": airline.code, "amount": 100}


async def test_every_refusal_has_its_own_code_and_moves_nothing(client, coffee_and_airline, convert):
    coffee, airline, _, _ = coffee_and_airline
    body = body_for(airline)
    content, headers = signed_request(coffee, "POST", PATH, body)

    unsigned = {k: v for k, v in headers.items() if k != signing.SIGNATURE_HEADER}
    assert_problem(await client.post(PATH, content=content, headers=unsigned), 401, "signature_missing")
    assert_problem(await client.post(PATH, content=content, headers=headers | {signing.SIGNATURE_HEADER: "x.y.z"}),
                   400, "signature_malformed")
    # The body changed after signing (one more point).
    tampered = content.replace(b'"amount": 100', b'"amount": 101')
    assert_problem(await client.post(PATH, content=tampered, headers=headers), 401, "signature_invalid")
    # Signed for another tenant, another path, or with another brand's key.
    assert_problem(await convert(coffee, body, tenant=airline.id), 403, "signature_wrong_tenant")
    other_path = signed_request(coffee, "POST", "/v1/conversions/1/commit", body)[1]
    assert_problem(await client.post(PATH, content=content, headers=other_path), 403, "signature_wrong_tenant")
    assert_problem(await convert(coffee, body, private_key=airline.private_key, kid=airline.kid), 403,
                   "signature_wrong_tenant")
    assert_problem(await convert(coffee, body, kid="no-such-key"), 401, "signing_key_unknown")
    stranger, _ = signing.generate_signing_key()
    assert_problem(await convert(coffee, body, private_key=stranger), 401, "signature_invalid")
    assert_problem(await convert(coffee, body, iat=int(time.time()) - 600), 401, "signature_stale")
    assert (await balance(client, coffee, "alice"))["balance"] == 10_000

    # The genuine request goes through once; its signature, replayed, is refused whatever the key.
    assert (await client.post(PATH, content=content, headers=headers)).status_code == 201
    assert_problem(await client.post(PATH, content=content, headers=headers), 409, "signature_replayed")
    assert_problem(await client.post(PATH, content=content, headers=headers | {"idempotency-key": "other"}), 409,
                   "signature_replayed")
    assert (await balance(client, coffee, "alice"))["balance"] == 9900


async def test_a_refused_signature_is_not_consumed(client, coffee_and_airline):
    coffee, airline, _, _ = coffee_and_airline
    content, headers = signed_request(coffee, "POST", PATH, body_for(airline))
    # Refused before its signature is consumed (no such member): the same signed request may then go through.
    wrong = content.replace(b'"alice"', b'"nobody"')
    assert_problem(await client.post(PATH, content=wrong, headers=headers), 401, "signature_invalid")
    assert (await client.post(PATH, content=content, headers=headers)).status_code == 201


async def test_revocation_applies_at_once_even_to_a_cached_key(client, coffee_and_airline, convert, register_key):
    coffee, airline, _, _ = coffee_and_airline
    assert (await convert(coffee, body_for(airline))).status_code == 201  # the API now holds the key in its cache
    assert (await client.post(f"/v1/signing-keys/{coffee.kid}/revoke", headers=coffee.headers)).status_code == 200
    assert_problem(await convert(coffee, body_for(airline)), 401, "signing_key_revoked")
    # A reserved conversion cannot be committed with the revoked key either; a new key can.
    new_key = await register_key(coffee.headers, "after-revocation")
    reserved = await convert(coffee, {**body_for(airline), "commit": False}, private_key=new_key,
                             kid="after-revocation")
    assert reserved.status_code == 201, reserved.text
    assert (await balance(client, coffee, "alice"))["balance"] == 9900


async def test_keys_rotate_with_overlap(coffee_and_airline, convert, register_key):
    coffee, airline, _, _ = coffee_and_airline
    now = datetime.now(UTC)
    next_key = await register_key(coffee.headers, "next", not_before=(now - timedelta(seconds=5)).isoformat())
    # Both the current and the next key are valid: either signs.
    assert (await convert(coffee, body_for(airline))).status_code == 201
    assert (await convert(coffee, body_for(airline), private_key=next_key, kid="next")).status_code == 201
    # A key not valid yet is refused.
    later = await register_key(coffee.headers, "later", not_before=(now + timedelta(hours=1)).isoformat())
    assert_problem(await convert(coffee, body_for(airline), private_key=later, kid="later"), 401,
                   "signing_key_not_valid_now")


async def test_commit_and_abort_are_signed_too(client, coffee_and_airline, convert, pool):
    coffee, airline, _, _ = coffee_and_airline
    reserved = (await convert(coffee, {**body_for(airline), "commit": False})).json()
    path = f"/v1/conversions/{reserved['id']}/commit"
    content, headers = signed_request(coffee, "POST", path, {})
    assert_problem(await client.post(path, content=content, headers={k: v for k, v in headers.items()
                                                                     if k != signing.SIGNATURE_HEADER}),
                   401, "signature_missing")
    # A signature made for the abort of this conversion does not commit it.
    abort_headers = signed_request(coffee, "POST", f"/v1/conversions/{reserved['id']}/abort", {})[1]
    assert_problem(await client.post(path, content=content, headers=abort_headers), 403, "signature_wrong_tenant")
    assert (await client.post(path, content=content, headers=headers)).status_code == 200
    # Every accepted signed request is kept with its exact bytes, for non-repudiation.
    kept = await pool.fetch("SELECT action, kid, body FROM exchange_signed_requests WHERE conversion_id = $1"
                            " ORDER BY id", reserved["id"])
    assert [(r["action"], r["kid"]) for r in kept] == [("reserve", coffee.kid), ("commit", coffee.kid)]
    assert kept[1]["body"] == content


async def test_the_countersignature_verifies_independently(client, coffee_and_airline, convert, resolve):
    coffee, airline, _, identity = coffee_and_airline
    content, headers = signed_request(coffee, "POST", PATH, body_for(airline))
    conversion = (await client.post(PATH, content=content, headers=headers)).json()
    jwks = await jwks_of(client)
    key_set = jwk.JWKSet.from_json(json.dumps(jwks))
    token = jws.JWS()
    token.deserialize(conversion["countersignature"])
    token.verify(key_set.get_key(token.jose_header["kid"]), alg="EdDSA")
    record = json.loads(token.payload)
    assert record["conversion_id"] == conversion["id"] and record["status"] == "committed"
    assert record["source"] == {"brand": coffee.code, "identity": identity, "amount": 100, "fee_amount": 1,
                                "point_value": "0.1"}
    assert record["target"] == {"brand": airline.code, "identity": identity, "amount": 198, "point_value": "0.05"}
    assert (record["gross_value"], record["fee_value"], record["net_value"]) == ("10", "0.1", "9.9")
    # It names the brand's signed request that committed it.
    signature_bytes = unb64(headers[signing.SIGNATURE_HEADER].split(".")[2])
    assert record["signed_request"] == {"kid": coffee.kid, "sha256": hashlib.sha256(signature_bytes).hexdigest()}
    # The SDK's own verification agrees; a tampered record does not verify.
    assert signing.verify_countersignature(conversion["countersignature"], jwks) == record
    header, payload, signature = conversion["countersignature"].split(".")
    forged = b64(json.dumps({**record, "net_value": "99"}).encode())
    token = jws.JWS()
    token.deserialize(f"{header}.{forged}.{signature}")
    with pytest.raises(jws.InvalidJWSSignature):
        token.verify(key_set.get_key(token.jose_header["kid"]), alg="EdDSA")
    # A conversion committed after reserving is countersigned the same way (bound to the commit's signature).
    reserved = (await convert(coffee, {**body_for(airline), "commit": False, "reserve_seconds": 60})).json()
    committed = (await resolve(coffee, reserved["id"], key=uuid.uuid4().hex)).json()
    assert signing.verify_countersignature(committed["countersignature"], jwks)["conversion_id"] == reserved["id"]
