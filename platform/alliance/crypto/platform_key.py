"""The platform's own Ed25519 signing key: it countersigns what the platform accepts, and its public half is
published as a JWKS (GET /.well-known/jwks.json) so anyone holding a countersigned record can verify it.

The key comes from ALLIANCE_PLATFORM_SIGNING_KEY (a private Ed25519 JWK as JSON, or a PKCS#8 PEM), required in
production; in development a key is generated once under the data folder (0600), like the data key."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import OKPKey
from litestar import Request, Response, get

from alliance.crypto.dev_secrets import development_secret
from alliance.settings import Settings

ALGORITHM = "EdDSA"
COUNTERSIGNATURE_TYPE = "alliance-countersignature+jws"
KEY_FILE = "platform-signing-key.pem"
_REGISTRY = jws.JWSRegistry(algorithms=[ALGORITHM], strict_check_header=False)
JWKS_MAX_AGE_SECONDS = 300


@contextmanager
def eddsa_without_warnings() -> Iterator[None]:
    """joserfc warns on every use of "EdDSA" (RFC 9864 prefers "Ed25519"); the alliance's protocol names EdDSA."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)
        yield


def canonical_json(record: dict[str, Any]) -> bytes:
    """The bytes a countersignature covers: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class PlatformSigner:
    """Signs with the platform key; `kid` is the key's RFC 7638 thumbprint."""

    def __init__(self, key: OKPKey) -> None:
        if key.key_type != "OKP" or key.curve_name != "Ed25519" or not key.is_private:
            raise ValueError("the platform signing key must be a private Ed25519 key")
        self._key = key
        self.kid = key.thumbprint()

    @classmethod
    def from_text(cls, text: str) -> PlatformSigner:
        text = text.strip()
        try:
            key = OKPKey.import_key(json.loads(text) if text.startswith("{") else text)
        except Exception as error:  # noqa: BLE001  a misconfiguration: say what is expected, not the key
            raise ValueError("ALLIANCE_PLATFORM_SIGNING_KEY is not a private Ed25519 JWK or PKCS#8 PEM") from error
        return cls(key)

    def countersign(self, record: dict[str, Any], *, issued_at: int | None = None) -> str:
        """A compact JWS (EdDSA) over the record's canonical JSON, which it carries as its payload. Ed25519 is
        deterministic: the same record with the same `issued_at` (default: now) gives the same JWS every time."""
        return self._sign(canonical_json(record), typ=COUNTERSIGNATURE_TYPE,
                          issued_at=int(time.time()) if issued_at is None else issued_at)

    def sign_detached(self, content: bytes, *, typ: str, issued_at: int, claims: dict[str, Any]) -> str:
        """A compact JWS (EdDSA) over `content`, payload detached (RFC 7515 appendix F): `header..signature`, to
        travel beside the content it signs (a statement file). `claims` go in the protected header, saying what
        the content is (so a genuine signature of another file cannot pass for this one's). Deterministic for the
        same content, claims and time."""
        encoded_header, _, signature = self._sign(content, typ=typ, issued_at=issued_at, claims=claims).split(".")
        return f"{encoded_header}..{signature}"

    def _sign(self, payload: bytes, *, typ: str, issued_at: int, claims: dict[str, Any] | None = None) -> str:
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": typ, "iat": issued_at, **(claims or {})}
        with eddsa_without_warnings():
            return jws.serialize_compact(header, payload, self._key, registry=_REGISTRY)

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify the platform's countersignatures (never a private member)."""
        public = self._key.as_dict(private=False)
        return {"keys": [{"kty": public["kty"], "crv": public["crv"], "x": public["x"], "kid": self.kid,
                          "use": "sig", "alg": ALGORITHM}]}


def platform_signer(settings: Settings) -> PlatformSigner:
    if settings.platform_signing_key:
        return PlatformSigner.from_text(settings.platform_signing_key)
    if settings.production:
        raise RuntimeError("ALLIANCE_PLATFORM_SIGNING_KEY is required in production "
                           "(a private Ed25519 key: JWK JSON or PKCS#8 PEM)")
    return PlatformSigner.from_text(development_secret(
        settings.data_dir / KEY_FILE, lambda: OKPKey.generate_key("Ed25519", private=True).as_pem(private=True).decode()
    ))


@get("/.well-known/jwks.json", summary="The platform's public signing keys (JWKS): verify its countersignatures",
     tags=["signing"])
async def jwks_endpoint(request: Request) -> Response[dict[str, Any]]:
    return Response(request.app.state.platform_signer.jwks(),
                    headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"})
