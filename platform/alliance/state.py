"""What the API process holds for its lifetime: the database and a Redis client."""

from __future__ import annotations

from litestar.datastructures import State
from redis.asyncio import Redis

from alliance.crypto.fields import FieldCipher
from alliance.db import Database


class AppState(State):
    db: Database
    redis: Redis
    cipher: FieldCipher
