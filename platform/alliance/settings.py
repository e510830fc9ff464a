"""Settings of the platform, read from the environment in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PREFIX = "ALLIANCE_"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(PREFIX + name)
    return value if value not in (None, "") else default


@dataclass(frozen=True, slots=True)
class Settings:
    # "production" switches logs to JSON and hides nothing else: errors never carry stack traces anywhere.
    env: str = "development"
    # Unset: the platform starts an embedded PostgreSQL / Redis under data_dir.
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(".alliance/data"))
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    # Database connections per API process, at most. The API is asyncio: requests beyond it wait for a connection
    # in the API, which is cheap, rather than in PostgreSQL, where more concurrent transactions than it has cores
    # cost CPU in lock contention (measured: conversions at 8 connections on 2 cores, 2.5 ms of server CPU each;
    # at 40, 6 ms). Size it to the database's cores across all API processes.
    db_pool_size: int = 10
    # The alliance's business time zone (settlement windows, business dates).
    time_zone: str = "Asia/Shanghai"
    settlement_currency: str = "CNY"
    outbox_batch_size: int = 100
    # 32 bytes, base64: encrypts personal data at rest. Required in production; in development a key is
    # generated once under data_dir.
    data_key: str | None = None
    # The platform's private Ed25519 signing key (a JWK as JSON, or a PKCS#8 PEM): it countersigns accepted
    # transfers. Required in production; in development a key is generated once under data_dir.
    platform_signing_key: str | None = None
    # Requests per second per API key.
    rate_limit_per_second: int = 200
    # Days after a settlement window is computed during which a brand may dispute a line of its statement.
    dispute_days: int = 7

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            env=_env("ENV", "development"),
            database_url=_env("DATABASE_URL"),
            redis_url=_env("REDIS_URL"),
            data_dir=Path(_env("DATA_DIR", ".alliance/data")).expanduser(),
            host=_env("HOST", "127.0.0.1"),
            port=int(_env("PORT", "8000")),
            log_level=_env("LOG_LEVEL", "INFO").upper(),
            db_pool_size=int(_env("DB_POOL_SIZE", "10")),
            time_zone=_env("TIME_ZONE", "Asia/Shanghai"),
            settlement_currency=_env("SETTLEMENT_CURRENCY", "CNY"),
            outbox_batch_size=int(_env("OUTBOX_BATCH_SIZE", "100")),
            data_key=_env("DATA_KEY"),
            platform_signing_key=_env("PLATFORM_SIGNING_KEY"),
            rate_limit_per_second=int(_env("RATE_LIMIT_PER_SECOND", "200")),
            dispute_days=int(_env("DISPUTE_DAYS", "7")),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
