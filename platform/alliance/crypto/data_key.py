"""The data encryption key: ALLIANCE_DATA_KEY, or in development a key generated once under the data folder."""

from __future__ import annotations

import base64
import os

from alliance.crypto.fields import FieldCipher
from alliance.settings import Settings


def field_cipher(settings: Settings) -> FieldCipher:
    if settings.data_key:
        return FieldCipher.from_base64(settings.data_key)
    if settings.production:
        raise RuntimeError("ALLIANCE_DATA_KEY is required in production (32 random bytes, base64)")
    path = settings.data_dir / "data.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(descriptor, "w") as file:
                file.write(base64.b64encode(os.urandom(32)).decode())
    return FieldCipher.from_base64(path.read_text().strip())
