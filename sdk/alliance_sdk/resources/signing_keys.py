"""/v1/signing-keys: the Ed25519 public keys that verify the brand's signed transfers, and the platform's own
public keys (its JWKS). Generating keys and signing requests is `alliance_sdk.signing`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alliance_sdk._models import SigningKey
from alliance_sdk._request import APIRequest, fields, path
from alliance_sdk.resources._resource import AsyncResource, SyncResource, list_of

JWKS_PATH = "/.well-known/jwks.json"


def _jwks(data: dict[str, Any]) -> dict[str, Any]:
    return data


def _register(kid: str, public_jwk: dict[str, Any], not_before: datetime | None,
              not_after: datetime | None) -> APIRequest:
    return APIRequest("POST", "/v1/signing-keys",
                      body=fields(kid=kid, public_jwk=public_jwk, not_before=not_before, not_after=not_after))


class SigningKeys(SyncResource):
    def register(
        self, kid: str, public_jwk: dict[str, Any], *, not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> SigningKey:
        """Registers the public half of a signing key under `kid`, valid from `not_before` (now) until `not_after`
        (no end). Register the next key before the current one ends: both verify while their windows overlap."""
        return self._client._request(_register(kid, public_jwk, not_before, not_after), SigningKey.from_json)

    def list(self) -> list[SigningKey]:
        return self._client._request(APIRequest("GET", "/v1/signing-keys"), list_of(SigningKey))

    def revoke(self, kid: str) -> SigningKey:
        """Revokes the key at once: requests it signs are refused from now on."""
        return self._client._request(APIRequest("POST", path("v1", "signing-keys", kid, "revoke")),
                                     SigningKey.from_json)

    def platform_jwks(self) -> dict[str, Any]:
        """The platform's public keys (JWKS), for `signing.verify_countersignature`."""
        return self._client._request(APIRequest("GET", JWKS_PATH), _jwks)


class AsyncSigningKeys(AsyncResource):
    async def register(
        self, kid: str, public_jwk: dict[str, Any], *, not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> SigningKey:
        """Registers the public half of a signing key under `kid`, valid from `not_before` (now) until `not_after`
        (no end). Register the next key before the current one ends: both verify while their windows overlap."""
        return await self._client._request(_register(kid, public_jwk, not_before, not_after), SigningKey.from_json)

    async def list(self) -> list[SigningKey]:
        return await self._client._request(APIRequest("GET", "/v1/signing-keys"), list_of(SigningKey))

    async def revoke(self, kid: str) -> SigningKey:
        """Revokes the key at once: requests it signs are refused from now on."""
        return await self._client._request(APIRequest("POST", path("v1", "signing-keys", kid, "revoke")),
                                           SigningKey.from_json)

    async def platform_jwks(self) -> dict[str, Any]:
        """The platform's public keys (JWKS), for `signing.verify_countersignature`."""
        return await self._client._request(APIRequest("GET", JWKS_PATH), _jwks)
