"""Where the backing services are: the configured URLs, else an embedded PostgreSQL / Redis under the
data folder (started here, stopped when this process exits)."""

from __future__ import annotations

import atexit
from dataclasses import dataclass

from alliance.settings import Settings, get_settings


@dataclass(frozen=True)
class BackingServices:
    database_url: str
    redis_url: str
    embedded: bool


_resolved: dict[tuple, BackingServices] = {}


def resolve_backing_services(settings: Settings | None = None) -> BackingServices:
    settings = settings or get_settings()
    if settings.database_url and settings.redis_url:
        return BackingServices(settings.database_url, settings.redis_url, embedded=False)
    # Once per process and data folder: later callers (broker, worker database, Alembic) share the servers.
    key = (settings.database_url, settings.redis_url, settings.data_dir.resolve())
    if key not in _resolved:
        _resolved[key] = _start_embedded(settings)
    return _resolved[key]


def _start_embedded(settings: Settings) -> BackingServices:
    from alliance.embedded import EmbeddedServices

    services = EmbeddedServices(
        settings.data_dir, postgres=not settings.database_url, redis=not settings.redis_url
    ).start()
    atexit.register(services.stop)
    return BackingServices(
        settings.database_url or services.database_url,
        settings.redis_url or services.redis_url,
        embedded=True,
    )


def database_url_for_tools() -> str:
    """For Alembic and other tools run by hand from the repository root."""
    return resolve_backing_services().database_url
