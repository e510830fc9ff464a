"""The signing-key API's request and response bodies. A key is refused with a validation_error before any
service runs when its kid or JWK is not what the platform accepts: an Ed25519 public key, never a private one."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

KID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
Kid = Annotated[str, Meta(pattern=KID_PATTERN, description="key id: 1-64 of A-Z a-z 0-9 . _ -")]
AwareDatetime = Annotated[datetime, Meta(tz=True, description="UTC ISO-8601 with a time zone")]
PublicJwk = Annotated[dict[str, Any], Meta(description='an Ed25519 public JWK: {"kty": "OKP", "crv": "Ed25519", '
                                                      '"x": ...}; private members ("d") are refused')]

# Members a JWK may carry besides kty, crv and x; anything holding private key material is refused.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})
OPTIONAL_MEMBERS = frozenset({"kid", "use", "alg", "key_ops"})


def b64url_decode(value: str) -> bytes:
    """Strict base64url without padding (RFC 7515 section 2)."""
    if not isinstance(value, str) or "=" in value or not value.isascii():
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64url") from error
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != value:
        raise ValueError("not canonical base64url")
    return raw


def public_ed25519_jwk(jwk: dict[str, Any], kid: str | None = None) -> dict[str, str]:
    """The canonical public JWK {kty, crv, x} of an Ed25519 key, or ValueError saying what is wrong."""
    private = sorted(PRIVATE_MEMBERS & jwk.keys())
    if private:
        raise ValueError(f"public_jwk holds private key material ({', '.join(private)}): send the public key only; "
                         "the platform never holds a brand's private key")
    unknown = sorted(jwk.keys() - {"kty", "crv", "x"} - OPTIONAL_MEMBERS)
    if unknown:
        raise ValueError(f"public_jwk has unknown members: {', '.join(unknown)}")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError('public_jwk must be an Ed25519 key: "kty": "OKP", "crv": "Ed25519"')
    try:
        x = b64url_decode(jwk.get("x"))
    except ValueError:
        raise ValueError('public_jwk "x" must be base64url (no padding)') from None
    if len(x) != 32:
        raise ValueError('public_jwk "x" must be 32 bytes (an Ed25519 public key)')
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", "EdDSA") not in ("EdDSA", "Ed25519"):
        raise ValueError('public_jwk must be for signatures: "use": "sig", "alg": "EdDSA"')
    if "key_ops" in jwk and (not isinstance(jwk["key_ops"], list) or set(jwk["key_ops"]) - {"verify"}):
        raise ValueError('public_jwk "key_ops" may only be ["verify"]')
    if "kid" in jwk and jwk["kid"] != kid:
        raise ValueError('public_jwk "kid" differs from the key\'s kid')
    return {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"]}


class SigningKeyCreate(Struct, forbid_unknown_fields=True):
    kid: Kid
    public_jwk: PublicJwk
    # Absent: valid from now on, with no end (until revoked). Overlapping windows let keys rotate.
    not_before: AwareDatetime | None = None
    not_after: AwareDatetime | None = None

    def __post_init__(self) -> None:
        self.public_jwk = public_ed25519_jwk(self.public_jwk, self.kid)
        if self.not_before and self.not_after and self.not_after <= self.not_before:
            raise ValueError("not_after must be later than not_before")


class SigningKeyRead(Struct):
    kid: str
    public_jwk: dict[str, Any]
    not_before: datetime
    not_after: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    # Derived at read time: scheduled (not yet valid), active, expired (past not_after) or revoked.
    status: Literal["scheduled", "active", "expired", "revoked"]
