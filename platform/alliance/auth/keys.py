"""API key format, generation and hashing.

A key reads `alk_<key id>_<secret>` (brand) or `alo_<key id>_<secret>` (operator): the prefix makes a leaked
key recognisable (and scannable), the key id finds the row, and only the SHA-256 of the whole key is stored.
The secret is 256 random bits, so a fast hash is the right one: nothing to brute-force, nothing slow on
every request."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum


class KeyKind(StrEnum):
    OPERATOR = "operator"
    BRAND = "brand"


PREFIXES = {KeyKind.OPERATOR: "alo", KeyKind.BRAND: "alk"}
_KEY = re.compile(r"^(alo|alk)_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class IssuedKey:
    kind: KeyKind
    key_id: str
    secret: str  # the whole key, shown once

    @property
    def hash(self) -> bytes:
        return hash_key(self.secret)


@dataclass(frozen=True)
class PresentedKey:
    kind: KeyKind
    key_id: str
    hash: bytes


def issue_key(kind: KeyKind) -> IssuedKey:
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    return IssuedKey(kind, key_id, f"{PREFIXES[kind]}_{key_id}_{secrets.token_urlsafe(32)}")


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse_key(presented: str) -> PresentedKey | None:
    match = _KEY.match(presented)
    if match is None:
        return None
    kind = KeyKind.OPERATOR if match[1] == "alo" else KeyKind.BRAND
    return PresentedKey(kind, match[2], hash_key(presented))
