"""The brand's signing-key API: registration (public Ed25519 JWKs only), listing, revocation."""

from datetime import UTC, datetime, timedelta

import pytest
from alliance_sdk import signing

from tests.api import assert_problem


async def test_a_key_is_registered_listed_and_revoked(client, pool, onboard):
    tenant, headers = await onboard()
    _, public_jwk = signing.generate_signing_key()
    until = datetime.now(UTC) + timedelta(days=30)
    created = await client.post("/v1/signing-keys", headers=headers, json={
        "kid": "2025-01", "public_jwk": {**public_jwk, "use": "sig", "alg": "EdDSA", "kid": "2025-01"},
        "not_after": until.isoformat()})
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["public_jwk"] == public_jwk  # stored canonical: kty, crv, x
    assert (key["kid"], key["status"], key["revoked_at"]) == ("2025-01", "active", None)
    assert datetime.fromisoformat(key["not_after"]) == until

    later = await client.post("/v1/signing-keys", headers=headers, json={
        "kid": "2025-02", "public_jwk": signing.generate_signing_key()[1],
        "not_before": (datetime.now(UTC) + timedelta(days=29)).isoformat()})
    assert later.json()["status"] == "scheduled"
    listed = (await client.get("/v1/signing-keys", headers=headers)).json()
    assert [k["kid"] for k in listed] == ["2025-01", "2025-02"]

    revoked = await client.post("/v1/signing-keys/2025-01/revoke", headers=headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    again = await client.post("/v1/signing-keys/2025-01/revoke", headers=headers)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # once
    assert_problem(await client.post("/v1/signing-keys/nope/revoke", headers=headers), 404, "signing_key_not_found")
    # A kid names one key forever, revoked or not.
    assert_problem(await client.post("/v1/signing-keys", headers=headers, json={
        "kid": "2025-01", "public_jwk": signing.generate_signing_key()[1]}), 409, "signing_key_kid_taken")
    stored = await pool.fetchval("SELECT public_jwk::text FROM signing_keys WHERE tenant_id = $1 AND kid = '2025-01'",
                                 tenant["id"])
    assert '"d"' not in stored


@pytest.mark.parametrize("kid", ["", "has space", "a/b", "x" * 65, "ключ", "a\u0000b"])
async def test_bad_kids_are_refused(client, onboard, kid):
    _, headers = await onboard()
    response = await client.post("/v1/signing-keys", headers=headers,
                                 json={"kid": kid, "public_jwk": signing.generate_signing_key()[1]})
    assert_problem(response, 422, "validation_error")


def private_jwk() -> dict:
    from joserfc.jwk import OKPKey

    return OKPKey.generate_key("Ed25519").as_dict(private=True)


@pytest.mark.parametrize("make_jwk, says", [
    (lambda public: private_jwk(), "private key material (d)"),
    (lambda public: {**public, "d": public["x"]}, "private key material (d)"),
    (lambda public: {**public, "crv": "Ed448"}, "Ed25519"),
    (lambda public: {**public, "kty": "EC"}, "Ed25519"),
    (lambda public: {"kty": "OKP", "crv": "Ed25519"}, "base64url"),
    (lambda public: {**public, "x": public["x"] + "=="}, "base64url"),
    (lambda public: {**public, "x": public["x"][:-3]}, "32 bytes"),
    (lambda public: {**public, "x": 12}, "base64url"),
    (lambda public: {**public, "use": "enc"}, "signatures"),
    (lambda public: {**public, "kid": "another"}, "kid"),
    (lambda public: {**public, "extra": 1}, "unknown members"),
])
async def test_only_an_ed25519_public_jwk_is_accepted(client, onboard, make_jwk, says):
    _, headers = await onboard()
    jwk = make_jwk(signing.generate_signing_key()[1])
    problem = assert_problem(await client.post("/v1/signing-keys", headers=headers,
                                               json={"kid": "k1", "public_jwk": jwk}), 422, "validation_error")
    assert says in str(problem["errors"])
    assert (await client.get("/v1/signing-keys", headers=headers)).json() == []


async def test_windows_must_make_sense(client, onboard):
    _, headers = await onboard()
    now = datetime.now(UTC)
    jwk = signing.generate_signing_key()[1]
    for window in ({"not_before": now.isoformat(), "not_after": (now - timedelta(seconds=1)).isoformat()},
                   {"not_after": (now - timedelta(hours=1)).isoformat()},
                   {"not_before": "2030-01-01T00:00:00"}):  # no time zone
        response = await client.post("/v1/signing-keys", headers=headers,
                                     json={"kid": "k1", "public_jwk": jwk, **window})
        assert_problem(response, 422, "validation_error")


async def test_operator_keys_and_anonymous_callers_are_refused(client, operator_key):
    from tests.api import bearer

    assert (await client.get("/v1/signing-keys", headers=bearer(operator_key))).status_code == 403
    assert (await client.get("/v1/signing-keys")).status_code == 401
