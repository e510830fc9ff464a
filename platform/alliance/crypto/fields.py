"""Personal data encrypted at rest: AES-256-GCM per field, with the tenant and the field's name as
associated data, so a ciphertext moved to another row's field or another tenant does not decrypt.

Stored value: version byte || 12-byte nonce || ciphertext+tag."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"


class FieldCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the data encryption key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_base64(cls, encoded: str) -> FieldCipher:
        return cls(base64.b64decode(encoded))

    def encrypt(self, plaintext: str | None, *, tenant_id: int, field: str) -> bytes | None:
        if plaintext is None:
            return None
        nonce = os.urandom(12)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), _aad(tenant_id, field))

    def decrypt(self, stored: bytes | None, *, tenant_id: int, field: str) -> str | None:
        if stored is None:
            return None
        if stored[:1] != VERSION:
            raise ValueError("unknown field encryption version")
        return self._aead.decrypt(stored[1:13], stored[13:], _aad(tenant_id, field)).decode()


def _aad(tenant_id: int, field: str) -> bytes:
    return f"alliance:{tenant_id}:{field}".encode()
