"""The composition root: assembles the API from the kernel and every domain's routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from redis.asyncio import Redis

from alliance.auth.guards import authenticated
from alliance.crypto.data_key import field_cipher
from alliance.crypto.platform_key import jwks_endpoint, platform_signer
from alliance.db import Database
from alliance.db.migrate import pending_migrations
from alliance.errors import EXCEPTION_HANDLERS
from alliance.health import HealthController
from alliance.logs import configure_logging
from alliance.middleware import request_id_middleware
from alliance.resources import resolve_backing_services
from alliance.settings import Settings, get_settings
from alliance.state import AppState
from alliance.webhooks.controllers import ROUTE_HANDLERS as WEBHOOK_ROUTES
from alliance.worker.broker import configure_broker


def _domain_commands() -> list:
    from exchange.cli import exchange
    from settlement.cli import settle
    from tenants.cli import keys, members, tenants

    return [tenants, keys, members, exchange, settle]


DOMAIN_COMMANDS = _domain_commands()


def domain_schedules() -> list:
    """The domains' periodic jobs, run by the scheduler beside the kernel's."""
    from datetime import time, timedelta

    from alliance.worker.scheduler import Schedule
    from exchange.conversions.tasks import expire_conversions
    from exchange.signing.tasks import prune_seen_signatures
    from settlement.tasks import settle

    return [
        Schedule("expire_conversions", expire_conversions, every=timedelta(seconds=10)),
        Schedule("prune_seen_signatures", prune_seen_signatures, every=timedelta(minutes=10)),
        # Nightly, just after midnight in the alliance's time zone: yesterday's window closes and is settled. Hourly
        # after that too, so a run that failed or was cut short is taken up again (each step is idempotent).
        Schedule("settle_nightly", settle, daily_at=time(0, 5)),
        Schedule("settle_catch_up", settle, every=timedelta(hours=1)),
    ]


class PendingMigrationsError(RuntimeError):
    pass


def create_app(
    settings: Settings | None = None, *, database_url: str | None = None, redis_url: str | None = None
) -> Litestar:
    from exchange.conversions.controllers import ROUTE_HANDLERS as CONVERSION_ROUTES
    from exchange.identities.controllers import ROUTE_HANDLERS as IDENTITY_ROUTES
    from exchange.membership.controllers import ROUTE_HANDLERS as MEMBERSHIP_ROUTES
    from exchange.rates.controllers import ROUTE_HANDLERS as RATE_ROUTES
    from exchange.signing.controllers import ROUTE_HANDLERS as SIGNING_ROUTES
    from settlement.controllers import ROUTE_HANDLERS as SETTLEMENT_ROUTES
    from tenants.controllers import ROUTE_HANDLERS as TENANT_ROUTES

    settings = settings or get_settings()
    configure_logging(json=settings.production, level=settings.log_level)
    cipher = field_cipher(settings)
    signer = platform_signer(settings)
    if database_url is None or redis_url is None:
        services = resolve_backing_services(settings)
        database_url, redis_url = database_url or services.database_url, redis_url or services.redis_url

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pending = await pending_migrations(database_url)
        if pending:
            raise PendingMigrationsError(
                f"the database is behind by {len(pending)} migration(s) ({', '.join(pending)}): "
                "run `alliance db upgrade` first"
            )
        app.state.db = Database.connect(database_url, pool_size=settings.db_pool_size, application_name="alliance-api")
        app.state.redis = Redis.from_url(redis_url)
        app.state.cipher = cipher
        app.state.platform_signer = signer
        configure_broker(redis_url)
        try:
            yield
        finally:
            await app.state.db.dispose()
            await app.state.redis.aclose()

    return Litestar(
        # Every /v1 request is authenticated by its API key; each controller says which kind it serves. The
        # platform's public keys (JWKS) are public.
        route_handlers=[
            HealthController,
            jwks_endpoint,
            Router(path="/", route_handlers=[*TENANT_ROUTES, *WEBHOOK_ROUTES, *SIGNING_ROUTES, *MEMBERSHIP_ROUTES,
                                             *RATE_ROUTES, *IDENTITY_ROUTES, *CONVERSION_ROUTES,
                                             *SETTLEMENT_ROUTES],
                   guards=[authenticated]),
        ],
        lifespan=[lifespan],
        state=AppState(),
        middleware=[request_id_middleware],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="Alliance",
            version="0.1.0",
            description="A multi-tenant brand-alliance points exchange.",
            path="/docs",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        logging_config=None,  # configure_logging above owns logging
        debug=False,
    )
