"""Test fixtures: real PostgreSQL and Redis, one throwaway database per session, a savepoint per test.

Servers come from ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` when set (CI uses the machine's servers), otherwise
from the embedded servers the dev command uses (so ``uv run pytest`` works on a machine with only Python and uv).
The session creates a fresh database, applies the real Alembic migrations to it, and drops it at the end.

Isolation: the app is built once per session. Each test gets its own connection with an open transaction, and the
app's session maker is pointed at it with ``join_transaction_mode="create_savepoint"``, so every commit the app
makes is a savepoint release and the test's rollback throws everything away. Tests about concurrency need real
commits on separate connections; they use ``committed_db``, which truncates the tables afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.extensions.litestar import AsyncSessionConfig, SQLAlchemyAsyncConfig
from litestar import Litestar
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import PROJECT_ROOT, Settings, alchemy_config
from app.db.pooling import driver_options
from app.main import create_app
from tests.support import AuthHeaders, UserMaker, asgi_transport

TEST_JWT_SECRET = "test-secret-" + "x" * 40

pytest_plugins = ["tests.watchdog"]

#: ``TEST_DB_POOL_MODE=transaction`` when ``TEST_DATABASE_URL`` is a transaction-pooling proxy (``.ci/with-pgbouncer``).
POOL_MODE = os.environ.get("TEST_DB_POOL_MODE", "session")


@dataclass(frozen=True)
class Servers:
    admin_database_url: str  # a database on the server we may connect to in order to create/drop ours
    redis_url: str


@pytest.fixture(scope="session")
def servers() -> Servers:
    database_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not (database_url and redis_url):
        from app.dev.embedded import start_embedded_services

        embedded = start_embedded_services(Path(os.environ.get("TEST_DATA_DIR", PROJECT_ROOT / ".data" / "test")))
        database_url = database_url or embedded.database_url
        redis_url = redis_url or embedded.redis_url.rsplit("/", 1)[0] + "/1"
    # Each session gets a new database, whose row ids start again at 1: jobs a previous session left queued in
    # Redis (keyed by row id) would make this session's identical keys no-ops. Start from an empty Redis database.
    with SyncRedis.from_url(redis_url) as client:
        client.flushdb()
    return Servers(database_url, redis_url)


def _asyncpg_dsn(url: str) -> tuple[str, dict[str, Any]]:
    parsed = make_url(url)
    host = parsed.query.get("host")
    kwargs: dict[str, Any] = {"host": host} if isinstance(host, str) else {}
    dsn = parsed.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    return dsn, kwargs


async def _admin_execute(admin_url: str, sql: str) -> None:
    dsn, kwargs = _asyncpg_dsn(admin_url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url(servers: Servers) -> Iterator[str]:
    """A throwaway database with all migrations applied, dropped after the session."""
    name = f"orders_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_execute(servers.admin_database_url, f'CREATE DATABASE "{name}"'))
    url = make_url(servers.admin_database_url).set(database=name).render_as_string(hide_password=False)
    settings = Settings.from_env(
        {"DATABASE_URL": url, "REDIS_URL": servers.redis_url, "JWT_SECRET": TEST_JWT_SECRET, "DB_POOL_MODE": POOL_MODE}
    )
    migrations = AlembicCommands(sqlalchemy_config=alchemy_config(settings))
    migrations.upgrade(revision="head")
    try:
        yield url
    finally:
        asyncio.run(_admin_execute(servers.admin_database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(database_url: str, servers: Servers) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": servers.redis_url,
            "JWT_SECRET": TEST_JWT_SECRET,
            "COOKIE_SECURE": "false",
            "RATE_LIMIT_AUTH": "100000/minute",
            "LOG_LEVEL": "WARNING",
            "EMAIL_BACKEND": "console",
            "DB_POOL_MODE": POOL_MODE,
        }
    )


@pytest.fixture(scope="session")
async def engine(database_url: str, settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(
        database_url,
        pool_size=20,
        max_overflow=20,
        connect_args=driver_options(settings.db_pool_mode),
    )
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def redis(servers: Servers) -> AsyncIterator[Redis]:
    client = Redis.from_url(servers.redis_url)
    yield client
    await client.aclose()


async def start_app(application: Litestar) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Run the app's lifespan in its own task (entering and leaving it must happen in one task)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with application.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    await asyncio.wait({task, asyncio.create_task(started.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    return task, stop


@pytest.fixture(scope="session")
async def alchemy(engine: AsyncEngine) -> SQLAlchemyAsyncConfig:
    return SQLAlchemyAsyncConfig(
        engine_instance=engine,
        session_config=AsyncSessionConfig(expire_on_commit=False),  # as in production (app.config)
        before_send_handler=None,
        create_all=False,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings, alchemy: SQLAlchemyAsyncConfig) -> AsyncIterator[Litestar]:
    application = create_app(settings, alchemy=alchemy, direct_pool=False)
    task, stop = await start_app(application)
    yield application
    stop.set()
    await task


@pytest.fixture
async def db_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        yield conn
        await transaction.rollback()


@pytest.fixture
async def session_maker(
    app: Litestar, alchemy: SQLAlchemyAsyncConfig, db_connection: Any
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Point the app at this test's transaction; every app commit becomes a savepoint release."""
    maker = async_sessionmaker(bind=db_connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
    original = app.state[alchemy.session_maker_app_state_key]
    app.state[alchemy.session_maker_app_state_key] = maker
    yield maker
    app.state[alchemy.session_maker_app_state_key] = original


@pytest.fixture
async def db(session_maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session inside the test's transaction, for arranging data and asserting on it."""
    async with session_maker() as session:
        yield session


@pytest.fixture
async def committed_db(app: Litestar, alchemy: SQLAlchemyAsyncConfig, engine: AsyncEngine) -> AsyncIterator[None]:
    """Real commits on pooled connections (for concurrency tests); every table is emptied afterwards."""
    yield
    try:
        async with engine.begin() as conn:
            # A connection the test left in a transaction would block TRUNCATE forever: fail instead, naming it.
            await conn.execute(text("SET LOCAL lock_timeout = '20s'"))
            tables = (
                await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename NOT IN ('alembic_versions', 'roles')"
                    )
                )
            ).scalars()
            await conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
    except DBAPIError as exc:
        async with engine.connect() as conn:
            holders = (await conn.execute(text(_LOCK_HOLDERS))).all()
        raise AssertionError(f"the tables could not be emptied ({exc.orig!r}); open transactions: {holders}") from exc


_LOCK_HOLDERS = """
    SELECT pid, application_name, state, wait_event_type, wait_event, now() - xact_start AS open_for, left(query, 200)
    FROM pg_stat_activity
    WHERE datname = current_database() AND xact_start IS NOT NULL AND pid <> pg_backend_pid()
"""


@pytest.fixture
async def client(app: Litestar, session_maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[httpx.AsyncClient]:
    transport = asgi_transport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def committed_client(app: Litestar, committed_db: None) -> AsyncIterator[httpx.AsyncClient]:
    transport = asgi_transport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def make_user(db: AsyncSession) -> UserMaker:
    return UserMaker(db)


@pytest.fixture
def auth_headers(app: Litestar) -> AuthHeaders:
    return AuthHeaders(app)
