"""Signed transfers, on the brand's side: its Ed25519 key pair, the signature on each exchange request, and
verification of what the platform signs (countersignatures, settlement statements). Needs
`pip install "alliance-sdk[signing]"` (cryptography).

    private_pem, public_jwk = signing.generate_signing_key()     # keep private_pem secret; never send it
    alliance.signing_keys.register("2025-01", public_jwk)
    signature = signing.sign_request(private_pem, kid="2025-01", tenant=TENANT_ID, method="POST",
                                     path="/v1/...", body=body_bytes)     # the Alliance-Signature header
    record = signing.verify_countersignature(jws, alliance.signing_keys.platform_jwks())
    header = signing.verify_detached(statement.signature, statement.content, alliance.signing_keys.platform_jwks())

A request signature is a compact JWS (RFC 7515) whose payload is the exact request body, detached (appendix F):
`BASE64URL(header) + ".." + BASE64URL(Ed25519(BASE64URL(header) + "." + BASE64URL(body)))`. The platform signs a
statement file the same way, its bytes in place of the body."""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from typing import Any

from alliance_sdk._errors import CountersignatureError
from alliance_sdk._request import SIGNATURE_HEADER

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError as error:  # the SDK's core works without it; only signing needs it
    raise ImportError('alliance_sdk.signing needs cryptography: pip install "alliance-sdk[signing]"') from error

ALGORITHM = "EdDSA"

__all__ = ["SIGNATURE_HEADER", "CountersignatureError", "generate_signing_key", "public_jwk", "sign_request",
           "verify_countersignature", "verify_detached"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if "=" in text or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _private_key(key: str | bytes | Ed25519PrivateKey) -> Ed25519PrivateKey:
    if isinstance(key, Ed25519PrivateKey):
        return key
    loaded = serialization.load_pem_private_key(key.encode() if isinstance(key, str) else key, password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise TypeError("the signing key must be an Ed25519 private key")
    return loaded


def public_jwk(private_key: str | bytes | Ed25519PrivateKey) -> dict[str, str]:
    """The public JWK of a private key: what `signing_keys.register` sends."""
    raw = _private_key(private_key).public_key().public_bytes(serialization.Encoding.Raw,
                                                              serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}


def generate_signing_key() -> tuple[str, dict[str, str]]:
    """A new Ed25519 key pair: (the private key as PKCS#8 PEM, to keep secret; its public JWK, to register)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode("ascii")
    return pem, public_jwk(key)


def sign_request(
    private_key: str | bytes | Ed25519PrivateKey, *, kid: str, tenant: int, method: str, path: str, body: bytes,
    iat: int | None = None, jti: str | None = None,
) -> str:
    """The detached compact JWS over `body` (the exact bytes sent) for a request of `tenant` (the brand's id)
    to `method` `path` (no query string). `iat` defaults to now; `jti` to a random id, so every signature is
    unique. The platform accepts a signature once: sign each attempt as it is sent (retries keep their
    Idempotency-Key, not their signature)."""
    header = {"alg": ALGORITHM, "kid": kid, "alliance_tenant": tenant, "method": method.upper(), "path": path,
              "iat": int(time.time()) if iat is None else iat, "jti": jti or _b64(os.urandom(16))}
    encoded_header = _b64(json.dumps(header, separators=(",", ":")).encode())
    signature = _private_key(private_key).sign(f"{encoded_header}.{_b64(body)}".encode("ascii"))
    return f"{encoded_header}..{_b64(signature)}"


def _countersignature_kid(jws: str) -> str | None:
    """The kid the protected header of a platform signature (a countersignature, a statement's signature) names,
    read before any verification: which key of the platform's JWKS should verify it (None when it names none)."""
    try:
        header = json.loads(_unb64(jws.split(".")[0]))
    except (ValueError, binascii.Error, UnicodeDecodeError, AttributeError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def _verified_header(encoded_header: str, encoded_payload: str, encoded_signature: str,
                     jwks: dict[str, Any]) -> dict[str, Any]:
    """The protected header, once the EdDSA signature over `encoded_header.encoded_payload` verifies with the key
    of the JWKS the header names; CountersignatureError otherwise."""
    try:
        header = json.loads(_unb64(encoded_header))
        signature = _unb64(encoded_signature)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise CountersignatureError("the JWS header or signature is not base64url JSON") from error
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM or "crit" in header:
        raise CountersignatureError("the signature must be EdDSA, with no critical extensions")
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == header.get("kid")
            and k.get("kty") == "OKP" and k.get("crv") == "Ed25519"]
    if not keys:
        raise CountersignatureError(f"the JWKS has no Ed25519 key {header.get('kid')!r}")
    try:
        key = Ed25519PublicKey.from_public_bytes(_unb64(keys[0]["x"]))
        key.verify(signature, f"{encoded_header}.{encoded_payload}".encode("ascii"))
    except (InvalidSignature, ValueError, KeyError, TypeError) as error:
        raise CountersignatureError("the signature does not verify") from error
    return header


def verify_countersignature(jws: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The record the platform countersigned, once its signature verifies with the key of the JWKS (as served at
    /.well-known/jwks.json) its header names; CountersignatureError otherwise."""
    try:
        encoded_header, encoded_payload, encoded_signature = jws.split(".")
        payload = _unb64(encoded_payload)
    except (ValueError, binascii.Error, AttributeError) as error:
        raise CountersignatureError("not a compact JWS with an attached payload") from error
    _verified_header(encoded_header, encoded_payload, encoded_signature, jwks)
    try:
        record = json.loads(payload)
    except ValueError as error:
        raise CountersignatureError("the countersigned payload is not JSON") from error
    if not isinstance(record, dict):
        raise CountersignatureError("the countersigned payload is not a JSON object")
    return record


def verify_detached(signature: str, content: bytes, jwks: dict[str, Any]) -> dict[str, Any]:
    """The protected header of a detached compact JWS (`header..signature`, RFC 7515 appendix F) once it verifies
    over `content`, the exact bytes it travelled beside, with the key of the JWKS its header names;
    CountersignatureError otherwise. The platform signs its statements so."""
    try:
        encoded_header, attached, encoded_signature = signature.split(".")
    except (ValueError, AttributeError) as error:
        raise CountersignatureError("not a detached compact JWS (header..signature)") from error
    if attached:  # a payload of its own would be what it signs, not `content`
        raise CountersignatureError("not a detached compact JWS (header..signature): it carries a payload")
    return _verified_header(encoded_header, _b64(content), encoded_signature, jwks)
