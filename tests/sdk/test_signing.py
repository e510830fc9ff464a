"""Signing keys through the SDK (sync and async), the platform's JWKS and countersignature checked by the SDK,
and the SDK's core importing without its `signing` extra."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import alliance_sdk as sdk
import pytest
from alliance_sdk import Alliance, AsyncAlliance, signing

from alliance.crypto.platform_key import platform_signer
from alliance.settings import Settings


def test_keys_are_registered_listed_and_revoked(brand: Alliance):
    private_pem, public_jwk = signing.generate_signing_key()
    assert signing.public_jwk(private_pem) == public_jwk and "d" not in public_jwk
    until = datetime.now(UTC) + timedelta(days=90)
    key = brand.signing_keys.register("2025-01", public_jwk, not_after=until)
    assert isinstance(key, sdk.SigningKey)
    assert (key.kid, key.public_jwk, key.status, key.not_after) == ("2025-01", public_jwk, "active", until)
    brand.signing_keys.register("2025-02", signing.generate_signing_key()[1],
                                not_before=datetime.now(UTC) + timedelta(days=80))
    assert [(k.kid, k.status) for k in brand.signing_keys.list()] == [("2025-01", "active"), ("2025-02", "scheduled")]
    assert brand.signing_keys.revoke("2025-01").status == "revoked"

    with pytest.raises(sdk.SigningKeyKidTakenError):
        brand.signing_keys.register("2025-01", signing.generate_signing_key()[1])
    with pytest.raises(sdk.SigningKeyNotFoundError):
        brand.signing_keys.revoke("nope")
    private_jwk = {**public_jwk, "d": public_jwk["x"]}
    with pytest.raises(sdk.ValidationError) as refused:
        brand.signing_keys.register("2025-03", private_jwk)
    assert "private key material" in str(refused.value.errors)


async def test_the_async_client_manages_keys_too(async_brand: AsyncAlliance):
    key = await async_brand.signing_keys.register("k1", signing.generate_signing_key()[1])
    assert [k.kid for k in await async_brand.signing_keys.list()] == ["k1"]
    assert (await async_brand.signing_keys.revoke(key.kid)).revoked_at is not None
    assert (await async_brand.signing_keys.platform_jwks())["keys"]


def test_the_sdk_verifies_the_platforms_countersignature(brand: Alliance, data_dir: Path):
    # The server's development key lives in its data folder: countersign with it as the platform would.
    countersigned = platform_signer(Settings(data_dir=data_dir)).countersign({"transfer_id": 7, "amount": 100})
    jwks = brand.signing_keys.platform_jwks()
    assert signing.verify_countersignature(countersigned, jwks) == {"transfer_id": 7, "amount": 100}
    header, payload, signature = countersigned.split(".")
    with pytest.raises(signing.CountersignatureError):
        signing.verify_countersignature(f"{header}.{payload}x.{signature}", jwks)
    with pytest.raises(signing.CountersignatureError):
        signing.verify_countersignature("garbage", jwks)


def test_the_core_imports_without_cryptography_and_signing_says_what_to_install():
    probe = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'cryptography': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import alliance_sdk\n"
        "client = alliance_sdk.Alliance(api_key='alk_x', base_url='http://127.0.0.1:1', signing_key='pem',\n"
        "                               signing_kid='k1', tenant_id=1)\n"
        "client.signing_keys\n"
        "for attempt in (lambda: __import__('alliance_sdk.signing'), lambda: client.conversions.commit(1)):\n"
        "    try:\n"
        "        attempt()\n"
        "    except ImportError as error:\n"
        "        print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.count('alliance-sdk[signing]') == 2  # importing signing, and a signed call
