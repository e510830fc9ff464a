"""What the API process holds for its lifetime: the database, a Redis client and the platform's keys."""

from __future__ import annotations

from litestar.datastructures import State
from redis.asyncio import Redis

from alliance.crypto.fields import FieldCipher
from alliance.crypto.platform_key import PlatformSigner
from alliance.db import Database


class AppState(State):
    db: Database
    redis: Redis
    cipher: FieldCipher
    platform_signer: PlatformSigner
