"""The composition root: ``create_app()`` builds the whole service from settings; ``app`` is the ASGI object.

Read it top down: the settings (with embedded dev servers filling in unset server URLs), the shared objects
(:func:`app.components.build_components`: pools, clients, codecs, probes, and the event side that
``app.events.setup`` builds — the worker's own pool, the dispatcher, the channels), then the Litestar app from small
named builders: routes, dependencies, plugins, CORS, and what is done to the built app. Engines and clients are
constructed there and nowhere else. Tests call ``create_app(settings, alchemy=..., redis=...)`` with their own
settings and connections; nothing global needs patching.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins import PluginProtocol
from litestar.types import ControllerRouterHandler
from redis.asyncio import Redis

from app.cli import OrdersCLIPlugin
from app.components import STATE_KEY, Components, build_components
from app.config import ConfigError, Settings
from app.core.errors import exception_handlers
from app.core.health import HealthController, MetricsController
from app.core.logging import configure_logging
from app.core.openapi import ClosedStructSchemaPlugin, add_component_schemas, openapi_config
from app.core.rate_limit import AUTH_RATE_LIMIT_STORE, FailOpenRedisStore, auth_rate_limit
from app.core.request_body import check_request_body
from app.core.request_context import RequestContextMiddleware
from app.domain.accounts import deps as accounts_deps
from app.domain.accounts.controllers import (
    AccountController,
    AdminUserController,
    CredentialsController,
    PasswordRecoveryController,
    SessionController,
)
from app.domain.addresses import deps as addresses_deps
from app.domain.addresses.controllers import AddressController
from app.domain.catalog import deps as catalog_deps
from app.domain.catalog.controllers import ProductController
from app.domain.orders import deps as orders_deps
from app.domain.orders.controllers import AdminOrderController, OrderController
from app.domain.webhooks import deps as webhooks_deps
from app.domain.webhooks.controllers import WebhookController
from app.events.live_docs import live_feed_description, live_feed_schemas
from app.events.webhook_docs import webhook_description, webhook_schemas
from app.events.worker import stopping_promptly, without_heartbeat_threads

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
    configure_logging(settings.log_level, settings.secret_values())
    parts = build_components(settings, alchemy=alchemy, redis=redis)
    app = Litestar(
        route_handlers=_route_handlers(parts),
        dependencies={**_DOMAIN_DEPENDENCIES, **parts.dependencies()},
        plugins=_plugins(parts),
        on_app_init=[parts.auth.on_app_init],
        exception_handlers=exception_handlers(),
        stores={AUTH_RATE_LIMIT_STORE: FailOpenRedisStore(parts.redis, namespace="ratelimit")},
        lifespan=[parts.connections, parts.events.lifespan, parts.shutdown.lifespan],
        openapi_config=openapi_config(_version(), sections=[live_feed_description(), webhook_description(settings)]),
        cors_config=_cors(settings),
        request_max_body_size=MAX_BODY_BYTES,
        before_request=check_request_body,
        logging_config=None,  # app.core.logging owns the log pipeline
        debug=False,
        state=State({STATE_KEY: parts}),
    )
    _finish(app, parts)
    return app


#: Each domain's providers of its services (the request's session, made on first use, and the direct pool).
_DOMAIN_DEPENDENCIES: dict[str, Provide] = {
    **accounts_deps.dependencies,
    **catalog_deps.dependencies,
    **addresses_deps.dependencies,
    **orders_deps.dependencies,
    **webhooks_deps.dependencies,
}


def _route_handlers(parts: Components) -> list[ControllerRouterHandler]:
    # Logging in, refreshing and password recovery share one rate limit per client address.
    rate_limited = Router(
        path="/",
        route_handlers=[CredentialsController, PasswordRecoveryController],
        middleware=[auth_rate_limit(parts.settings.rate_limit_auth).middleware],
    )
    return [
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
        *parts.events.route_handlers,
    ]


def _plugins(parts: Components) -> list[PluginProtocol]:
    return [
        SQLAlchemyPlugin(config=parts.alchemy),
        parts.events.channels,
        parts.events.saq_plugin,
        OrdersCLIPlugin(build_app=create_app),
        ClosedStructSchemaPlugin(),
    ]


def _cors(settings: Settings) -> CORSConfig | None:
    if not settings.cors_origins:
        return None
    return CORSConfig(allow_origins=list(settings.cors_origins), allow_credentials=True)


def _finish(app: Litestar, parts: Components) -> None:
    """What can only be done to the built app."""
    without_heartbeat_threads(parts.events.saq_plugin)
    stopping_promptly(parts.events.saq_plugin, grace=parts.settings.worker_shutdown_grace_seconds)
    # Builds the document now (about 30 ms); the WebSocket and webhook messages become component schemas.
    add_component_schemas(app.openapi_schema, {**live_feed_schemas(), **webhook_schemas()})
    # Outermost layer, outside the router: request ids and the access log cover 404/405 and errors too.
    app.asgi_handler = RequestContextMiddleware(parts.shutdown.middleware(app.asgi_handler))


def __getattr__(name: str) -> Any:
    """``app.main:app`` is built on first access (PEP 562), so importing this module has no side effects."""
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
