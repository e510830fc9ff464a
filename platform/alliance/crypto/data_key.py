"""The data encryption key: ALLIANCE_DATA_KEY, or in development a key generated once under the data folder."""

from __future__ import annotations

import base64
import os

from alliance.crypto.dev_secrets import development_secret
from alliance.crypto.fields import FieldCipher
from alliance.settings import Settings


def field_cipher(settings: Settings) -> FieldCipher:
    if settings.data_key:
        return FieldCipher.from_base64(settings.data_key)
    if settings.production:
        raise RuntimeError("ALLIANCE_DATA_KEY is required in production (32 random bytes, base64)")
    key = development_secret(settings.data_dir / "data.key", lambda: base64.b64encode(os.urandom(32)).decode())
    return FieldCipher.from_base64(key.strip())
