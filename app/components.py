"""The long-lived objects of one app: built once per process by :func:`build_components`, reached one way.

Everything here lives as long as the app (pools, clients, codecs, probes) and is shared by every request. The app
keeps them in one place, ``app.state.components``, and nothing else of ours goes on ``app.state``:

* handlers ask for them by name in their signature (``settings``, ``tokens``, ``passwords``, ``redis``,
  ``readiness``): :meth:`Components.dependencies` turns the fields into constant providers, so a name is the same
  object for every handler;
* code that runs without a handler signature — per-request providers and guards on hot routes (a second injected
  dependency would make Litestar resolve them in a task group on every request), the CLI, the dev server, tests —
  reads ``app.state.components``: through :func:`components_of` where it may import this module, or as that attribute
  in the packages this module imports itself (``app.db``, ``app.core``, the domains, ``app.events``), which would
  otherwise import each other in a circle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from litestar import Litestar
from litestar.di import Provide
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import models
from app.config import MIGRATIONS_VERSION_TABLE, PROJECT_ROOT, Settings, alchemy_config
from app.core.auth import BearerAuth, Principal
from app.core.cursors import CursorCodec
from app.core.health import ReadinessProbe
from app.core.security import AccessTokenClaims, PasswordHashing, TokenCodec
from app.core.shutdown import GracefulShutdown
from app.db.prepared import DirectPool
from app.db.providers import request_session
from app.domain.accounts.services import UserService
from app.domain.webhooks.targets import TargetPolicy
from app.events.setup import EventComponents, build_event_components

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

__all__ = ("Components", "build_components", "components_of", "migration_heads")

#: The one key of ``app.state`` that :func:`create_app <app.main.create_app>` sets.
STATE_KEY: Final = "components"

#: Routes the bearer-token middleware leaves alone: documents, probes, metrics (their own guard) and WebSockets
#: (a token in the query string, checked by the feed itself).
_PUBLIC_PATHS: Final = ["^/schema", "^/metrics$", "^/health$", "^/ready$", "^/ws/"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Components:
    settings: Settings
    alchemy: SQLAlchemyAsyncConfig
    redis: Redis
    #: The asyncpg pool of prepared statements that the hot paths run on (``app.db.prepared``).
    direct: DirectPool
    passwords: PasswordHashing
    tokens: TokenCodec
    cursors: CursorCodec
    webhook_targets: TargetPolicy
    shutdown: GracefulShutdown
    readiness: ReadinessProbe
    auth: BearerAuth
    events: EventComponents

    def dependencies(self) -> dict[str, Provide]:
        """What handlers can name in their signature: these objects, and the event side's providers."""
        shared = {
            "settings": self.settings,
            "passwords": self.passwords,
            "tokens": self.tokens,
            "redis": self.redis,
            "readiness": self.readiness,
            "webhook_targets": self.webhook_targets,
        }
        return {**{name: _constant(value) for name, value in shared.items()}, **self.events.dependencies}

    @asynccontextmanager
    async def connections(self, _: Litestar) -> AsyncIterator[None]:
        """Lifespan of the connections this module opened: the direct pool, then Redis (the engine is the plugin's)."""
        await self.direct.open()
        try:
            yield
        finally:
            await self.direct.close()
            await self.redis.aclose()


def components_of(app: Litestar) -> Components:
    """The app's components (set by ``create_app``)."""
    return cast("Components", app.state[STATE_KEY])


def build_components(
    settings: Settings, *, alchemy: SQLAlchemyAsyncConfig | None = None, redis: Redis | None = None
) -> Components:
    """Build every shared object from ``settings`` (whose server URLs are resolved); ``alchemy``/``redis`` are the
    ones tests inject. Opens nothing: connections open in :meth:`Components.connections` when the app starts."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    alchemy = alchemy or alchemy_config(settings)
    redis = redis or Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )
    direct = DirectPool(settings.database_url, size=settings.db_direct_pool_size, pool_mode=settings.db_pool_mode)
    tokens = TokenCodec.for_settings(settings)
    shutdown = GracefulShutdown(settings.shutdown_drain_seconds)
    return Components(
        settings=settings,
        alchemy=alchemy,
        redis=redis,
        direct=direct,
        passwords=PasswordHashing(),
        tokens=tokens,
        cursors=CursorCodec(settings.jwt_secret),
        webhook_targets=TargetPolicy(
            allow_private=settings.webhook_allow_private, allow_insecure=settings.webhook_allow_insecure
        ),
        shutdown=shutdown,
        readiness=_readiness(alchemy, redis, shutdown),
        auth=_bearer_auth(tokens, direct),
        events=build_event_components(settings, alchemy, redis, _session_maker(alchemy)),
    )


def migration_heads() -> frozenset[str]:
    """The heads of ``migrations/``: what ``/ready`` expects the database to be at."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def _readiness(alchemy: SQLAlchemyAsyncConfig, redis: Redis, shutdown: GracefulShutdown) -> ReadinessProbe:
    return ReadinessProbe(
        alchemy.get_engine(),
        redis,
        version_table=MIGRATIONS_VERSION_TABLE,
        expected_heads=migration_heads(),
        expected_columns={table.name: frozenset(table.columns.keys()) for table in models.metadata.sorted_tables},
        draining=lambda: shutdown.draining,
    )


def _bearer_auth(tokens: TokenCodec, direct: DirectPool) -> BearerAuth:
    async def load_principal(
        claims: AccessTokenClaims, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> Principal | None:
        # One prepared read on the direct pool.
        return await UserService(session=request_session(connection), direct=direct).load_principal(
            claims.user_id, issued_at=claims.issued_at
        )

    return BearerAuth(codec=tokens, load_principal=load_principal, exclude=_PUBLIC_PATHS)


def _session_maker(alchemy: SQLAlchemyAsyncConfig) -> Callable[[], async_sessionmaker[AsyncSession]]:
    """The plugin's session maker: advanced-alchemy creates it once per config and caches it there."""
    return lambda: cast("async_sessionmaker[AsyncSession]", alchemy.create_session_maker())


def _constant(value: Any) -> Provide:
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)
