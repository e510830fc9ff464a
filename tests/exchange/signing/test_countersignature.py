"""The platform's countersignature and its JWKS: served without authentication, public members only, and
verified by an independent JWS implementation (jwcrypto) and by the SDK."""

from __future__ import annotations

import json
import os
import stat

import pytest
from alliance_sdk import signing
from joserfc.jwk import OKPKey
from jwcrypto import jwk, jws

from alliance.crypto.platform_key import KEY_FILE, PlatformSigner, platform_signer
from alliance.settings import Settings

RECORD = {"transfer_id": 42, "from_tenant": 1, "to_tenant": 2, "amount": 100, "rate": "0.5", "note": "café",
          "signed_request": {"kid": "k1", "signature": "eyJ..abc"}}


async def jwks_of(client) -> dict:
    response = await client.get("/.well-known/jwks.json")  # no API key
    assert response.status_code == 200, response.text
    assert "public" in response.headers["cache-control"]
    return response.json()


async def test_the_jwks_is_public_and_holds_public_keys_only(client):
    keys = (await jwks_of(client))["keys"]
    assert len(keys) == 1
    assert set(keys[0]) == {"kty", "crv", "x", "kid", "use", "alg"}
    assert (keys[0]["kty"], keys[0]["crv"], keys[0]["alg"], keys[0]["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert keys[0]["kid"] == OKPKey.import_key(keys[0]).thumbprint()


async def test_jwcrypto_verifies_the_countersignature_against_the_served_jwks(client):
    countersigned = client.app.state.platform_signer.countersign(RECORD)
    key_set = jwk.JWKSet.from_json(json.dumps(await jwks_of(client)))
    token = jws.JWS()
    token.deserialize(countersigned)
    header = token.jose_header
    assert (header["alg"], header["typ"]) == ("EdDSA", "alliance-countersignature+jws")
    token.verify(key_set.get_key(header["kid"]), alg="EdDSA")
    assert json.loads(token.payload) == RECORD
    # The SDK (its own verification, on cryptography) agrees.
    assert signing.verify_countersignature(countersigned, await jwks_of(client)) == RECORD

    header_part, payload_part, signature_part = countersigned.split(".")
    tampered_record = dict(RECORD, amount=1000)
    from jwcrypto.common import base64url_encode

    tampered = f"{header_part}.{base64url_encode(json.dumps(tampered_record))}.{signature_part}"
    forged = jws.JWS()
    forged.deserialize(tampered)
    with pytest.raises(jws.InvalidJWSSignature):
        forged.verify(key_set.get_key(header["kid"]), alg="EdDSA")
    with pytest.raises(signing.CountersignatureError):
        signing.verify_countersignature(tampered, await jwks_of(client))
    other = PlatformSigner(OKPKey.generate_key("Ed25519")).jwks()
    with pytest.raises(signing.CountersignatureError):
        signing.verify_countersignature(countersigned, other)  # another platform's keys: no such kid


def test_the_key_comes_from_the_environment_as_jwk_or_pem(tmp_path):
    key = OKPKey.generate_key("Ed25519")
    from_jwk = platform_signer(Settings(platform_signing_key=json.dumps(key.as_dict(private=True)),
                                        data_dir=tmp_path))
    from_pem = platform_signer(Settings(platform_signing_key=key.as_pem(private=True).decode(), env="production"))
    assert from_jwk.kid == from_pem.kid == key.thumbprint()
    assert from_jwk.jwks() == from_pem.jwks()
    assert not (tmp_path / KEY_FILE).exists()
    public_only = json.dumps(key.as_dict(private=False))
    for text in (public_only, "not a key", json.dumps(OKPKey.generate_key("X25519").as_dict(private=True))):
        with pytest.raises(ValueError):
            platform_signer(Settings(platform_signing_key=text))


def test_production_requires_the_key_and_development_makes_one_once(tmp_path):
    with pytest.raises(RuntimeError, match="ALLIANCE_PLATFORM_SIGNING_KEY"):
        platform_signer(Settings(env="production", data_dir=tmp_path))
    first = platform_signer(Settings(data_dir=tmp_path / "data"))
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert platform_signer(Settings(data_dir=tmp_path / "data")).kid == first.kid
