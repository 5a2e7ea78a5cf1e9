"""The composition root: ``create_app()`` builds the whole service from settings; ``app`` is the ASGI object.

Engines, clients and plugins are built here or by the builders it calls (``app.events.setup`` builds the event side:
the worker's own pool, the dispatcher, the channels). Tests call ``create_app(settings, alchemy=...)`` with their own
settings and database config; nothing global needs patching.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from typing import TYPE_CHECKING, Any

import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import models  # registers every table on the shared metadata
from app.cli import OrdersCLIPlugin
from app.config import (
    MIGRATIONS_VERSION_TABLE,
    PROJECT_ROOT,
    ConfigError,
    Settings,
    alchemy_config,
)
from app.core.auth import BearerAuth, Principal
from app.core.cursors import CursorCodec
from app.core.errors import exception_handlers
from app.core.health import HealthController, MetricsController, ReadinessProbe
from app.core.logging import configure_logging
from app.core.openapi import ClosedStructSchemaPlugin, add_component_schemas, openapi_config
from app.core.rate_limit import (
    AUTH_RATE_LIMIT_STORE,
    FailOpenRedisStore,
    auth_rate_limit,
)
from app.core.request_body import check_request_body
from app.core.request_context import RequestContextMiddleware
from app.core.security import AccessTokenClaims, PasswordHashing, TokenCodec
from app.core.shutdown import GracefulShutdown
from app.db.prepared import DirectPool
from app.db.providers import request_session
from app.domain.accounts import deps as accounts_deps
from app.domain.accounts.controllers import (
    AccountController,
    AdminUserController,
    CredentialsController,
    PasswordRecoveryController,
    SessionController,
)
from app.domain.accounts.services import UserService
from app.domain.addresses import deps as addresses_deps
from app.domain.addresses.controllers import AddressController
from app.domain.catalog import deps as catalog_deps
from app.domain.catalog.controllers import ProductController
from app.domain.orders import deps as orders_deps
from app.domain.orders.controllers import AdminOrderController, OrderController
from app.domain.webhooks import deps as webhooks_deps
from app.domain.webhooks.controllers import WebhookController
from app.domain.webhooks.targets import TargetPolicy
from app.events.live_docs import live_feed_description, live_feed_schemas
from app.events.setup import build_event_components
from app.events.webhook_docs import webhook_description, webhook_schemas
from app.events.worker import without_heartbeat_threads

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

__all__ = ("create_app",)

MAX_BODY_BYTES = 1_048_576


def resolve_services(settings: Settings) -> Settings:
    """Fill in unset ``DATABASE_URL``/``REDIS_URL`` with embedded dev servers (never in production)."""
    if settings.database_url and settings.redis_url:
        return settings
    if settings.is_production:  # Settings.from_env already refuses this; guard against hand-built settings
        raise ConfigError("DATABASE_URL", "is required in production")
    try:
        from app.dev.embedded import start_embedded_services
    except ImportError as exc:  # the dev dependency group is not installed (e.g. a production image)
        raise ConfigError("DATABASE_URL", "is not set and the embedded dev servers are not installed") from exc
    services = start_embedded_services(settings.data_dir)
    return msgspec.structs.replace(
        settings,
        database_url=settings.database_url or services.database_url,
        redis_url=settings.redis_url or services.redis_url,
    )


def migration_heads() -> frozenset[str]:
    config = AlembicConfig()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def _version() -> str:
    try:
        return metadata.version("orders-service")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def create_app(
    settings: Settings | None = None,
    *,
    alchemy: SQLAlchemyAsyncConfig | None = None,
    redis: Redis | None = None,
) -> Litestar:
    """Build the service. ``settings`` defaults to the environment; ``alchemy``/``redis`` let tests inject theirs."""
    settings = resolve_services(settings or Settings.from_env())
    assert settings.redis_url is not None  # resolve_services guarantees both
    assert settings.database_url is not None
    configure_logging(settings.log_level, settings.secret_values())

    alchemy = alchemy or alchemy_config(settings)
    redis = redis or Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )
    passwords = PasswordHashing()
    tokens = TokenCodec.for_settings(settings)
    cursors = CursorCodec(settings.jwt_secret)

    direct = DirectPool(settings.database_url, size=settings.db_direct_pool_size, pool_mode=settings.db_pool_mode)

    async def load_principal(
        claims: AccessTokenClaims, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> Principal | None:
        # One prepared read on the direct pool.
        return await UserService(session=request_session(connection), direct=direct).load_principal(
            claims.user_id, issued_at=claims.issued_at
        )

    auth = BearerAuth(
        codec=tokens,
        load_principal=load_principal,
        exclude=["^/schema", "^/metrics$", "^/health$", "^/ready$", "^/ws/"],
    )

    @asynccontextmanager
    async def connections_lifespan(_: Litestar) -> AsyncIterator[None]:
        await direct.open()
        try:
            yield
        finally:
            await direct.close()
            await redis.aclose()

    def session_maker() -> async_sessionmaker[AsyncSession]:
        # The SQLAlchemy plugin puts the maker into app state when the app is built, after this function runs.
        maker: async_sessionmaker[AsyncSession] = app.state[alchemy.session_maker_app_state_key]
        return maker

    events = build_event_components(settings, alchemy, redis, session_maker)
    shutdown = GracefulShutdown(settings.shutdown_drain_seconds)
    readiness = ReadinessProbe(
        alchemy.get_engine(),
        redis,
        version_table=MIGRATIONS_VERSION_TABLE,
        expected_heads=migration_heads(),
        expected_columns={table.name: frozenset(table.columns.keys()) for table in models.metadata.sorted_tables},
        draining=lambda: shutdown.draining,
    )
    rate_limited = Router(
        path="/",
        route_handlers=[CredentialsController, PasswordRecoveryController],
        middleware=[auth_rate_limit(settings.rate_limit_auth).middleware],
    )

    def constant(value: Any) -> Provide:
        return Provide(lambda: value, use_cache=True, sync_to_thread=False)

    app = Litestar(
        route_handlers=[
            rate_limited,
            SessionController,
            AccountController,
            AdminUserController,
            ProductController,
            AddressController,
            OrderController,
            AdminOrderController,
            WebhookController,
            HealthController,
            MetricsController,
            *events.route_handlers,
        ],
        dependencies={
            **accounts_deps.dependencies,
            **catalog_deps.dependencies,
            **addresses_deps.dependencies,
            **orders_deps.dependencies,
            **webhooks_deps.dependencies,
            "webhook_targets": constant(
                TargetPolicy(
                    allow_private=settings.webhook_allow_private,
                    allow_insecure=settings.webhook_allow_insecure,
                )
            ),
            "settings": constant(settings),
            "passwords": constant(passwords),
            "tokens": constant(tokens),
            "redis": constant(redis),
            "readiness": constant(readiness),
            **events.dependencies,
        },
        plugins=[
            SQLAlchemyPlugin(config=alchemy),
            events.channels,
            events.saq_plugin,
            OrdersCLIPlugin(build_app=create_app),
            ClosedStructSchemaPlugin(),
        ],
        on_app_init=[auth.on_app_init],
        exception_handlers=exception_handlers(),
        stores={AUTH_RATE_LIMIT_STORE: FailOpenRedisStore(redis, namespace="ratelimit")},
        lifespan=[connections_lifespan, events.lifespan, shutdown.lifespan],
        openapi_config=openapi_config(_version(), sections=[live_feed_description(), webhook_description(settings)]),
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins), allow_credentials=True)
        if settings.cors_origins
        else None,
        request_max_body_size=MAX_BODY_BYTES,
        before_request=check_request_body,
        logging_config=None,  # app.core.logging owns the log pipeline
        debug=False,
    )
    app.state.settings = settings
    app.state.tokens = tokens
    app.state.cursors = cursors
    app.state.direct = direct
    app.state.alchemy = alchemy
    app.state.outbox = events.dispatcher
    app.state.shutdown = shutdown
    without_heartbeat_threads(events.saq_plugin)
    # Builds the document now (about 30 ms); the WebSocket and webhook messages become component schemas.
    add_component_schemas(app.openapi_schema, {**live_feed_schemas(), **webhook_schemas()})
    # Outermost layer, outside the router: request ids and the access log cover 404/405 and errors too.
    app.asgi_handler = RequestContextMiddleware(shutdown.middleware(app.asgi_handler))
    return app


def __getattr__(name: str) -> Any:
    """``app.main:app`` is built on first access (PEP 562), so importing this module has no side effects."""
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
