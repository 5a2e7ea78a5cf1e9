"""Test fixtures: real PostgreSQL and Redis, one throwaway database per session, tables emptied after each test.

Servers come from ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` when set (CI uses the machine's servers), otherwise
from the embedded servers the dev command uses (so ``uv run pytest`` works on a machine with only Python and uv).
The session creates a fresh database, applies the real Alembic migrations to it, and drops it at the end.

Isolation: the app is built once per session, exactly as production builds it: the API reads and writes through
its direct asyncpg pool and its SQLAlchemy sessions, on connections of their own, and every commit is real. So is
every commit of ``db``, the session tests arrange data and assert with (a row a test wants the API to see must be
committed, not just flushed). After each test that reached the database (through ``db``, ``db_connection``,
``client`` or ``committed_db``), one round trip of ``DELETE`` statements empties every table but ``roles`` and
Alembic's (both filled by the migrations): about 0.2 ms when the test wrote a few rows. Sequences are not reset,
so row ids never repeat within a session and keys built from them (email jobs queued in Redis) stay unique.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
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
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import MIGRATIONS_VERSION_TABLE, PROJECT_ROOT, Settings, alchemy_config
from app.db.pooling import driver_options
from app.main import create_app
from app.models import metadata
from tests.support import AuthHeaders, UserMaker, asgi_transport, webhook_redis_url
from tests.watchdog import running_tasks

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
    _QUEUE_GUARD.redis_url = redis_url
    return Servers(database_url, redis_url)


class QueueGuard:
    """After each test, no SAQ worker may still be waiting for jobs on the session's Redis databases.

    Every app a test starts with a worker (in-process or as a process) must have stopped it by the time the test's
    fixtures are torn down: a worker left running takes later tests' jobs with its own settings (seen: a webhook
    worker refusing the webhook tests' ``http://`` receiver). A waiting worker is a client blocked in ``BLMOVE``
    on the database; a stopping one gets ``GRACE_S`` to go. Checked: the session's database and the next one (the
    webhook tests' own, ``tests/integration/webhooks/conftest.py``). One ``CLIENT LIST`` per test.
    """

    GRACE_S = 5.0

    def __init__(self) -> None:
        self.redis_url: str | None = None

    def waiting_workers(self) -> list[dict[str, Any]]:
        assert self.redis_url is not None
        watched = {_db_number(self.redis_url), _db_number(webhook_redis_url(self.redis_url))}
        with SyncRedis.from_url(self.redis_url) as client:
            clients: list[dict[str, Any]] = client.client_list()
        return [c for c in clients if int(c.get("db", -1)) in watched and "b" in c.get("flags", "")]

    def check(self) -> None:
        if self.redis_url is None:
            return
        deadline = time.monotonic() + self.GRACE_S
        while waiting := self.waiting_workers():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(waiting)} Redis clients of a worker outlived the test, still waiting for jobs "
                    f"(first: {waiting[0]}); asyncio tasks still running:\n{running_tasks()}"
                )
            time.sleep(0.1)


def _db_number(redis_url: str) -> int:
    return int(redis_url.rsplit("/", 1)[1] or 0)


_QUEUE_GUARD = QueueGuard()


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test() -> Iterator[None]:
    yield
    _QUEUE_GUARD.check()


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
            # SAQ's stop waits this long for the worker's own loops even when no job runs: 20 s (the default) per
            # in-process worker made every events test's teardown take 20 s. Tests about the grace set their own.
            "WORKER_SHUTDOWN_GRACE_SECONDS": "1",
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


@asynccontextmanager
async def running(application: Litestar) -> AsyncIterator[Litestar]:
    """``application`` with its lifespan running (its in-process worker too, if it has one) until the block is left."""
    task, stop = await start_app(application)
    try:
        yield application
    finally:
        stop.set()
        await task


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
    application = create_app(settings, alchemy=alchemy)
    task, stop = await start_app(application)
    yield application
    stop.set()
    await task


#: Filled by the migrations and never written by the app: kept between tests.
KEPT_TABLES = frozenset({"roles", MIGRATIONS_VERSION_TABLE})
#: Written by triggers when other tables change (``order_counts`` follows ``orders``).
DERIVED_TABLES = frozenset({"order_counts"})


class TableCleaner:
    """Empties the app's tables on a connection of its own, children before parents, in one round trip.

    ``DELETE``, not ``TRUNCATE``: measured on this schema, the ``DELETE``s of a test's few rows took about 0.2 ms
    (0.1 ms when nothing was written) and one ``TRUNCATE`` of the same tables 200-300 ms, since it replaces every
    table's and index's files; and ``DELETE`` waits only for row locks, where ``TRUNCATE`` waits for any transaction
    that merely read a table. The connection does not wait for the WAL flush (``synchronous_commit = off``: 8 ms a
    cleanup otherwise): a crash of the test server loses nothing anyone needs.
    """

    def __init__(self, connection: asyncpg.Connection, tables: Sequence[str], derived: Sequence[str]) -> None:
        self._connection = connection
        #: Parents before children (the order to insert in); emptied in reverse.
        self.tables = tuple(tables)
        #: Kept by triggers on the other tables (emptying those writes to these): emptied last, never inserted into.
        self.derived = tuple(derived)
        # One transaction, its settings LOCAL: a session setting (or a startup parameter, which PgBouncer refuses)
        # would not follow the connection behind a transaction-pooling proxy.
        deletes = "; ".join(f'DELETE FROM "{table}"' for table in (*reversed(self.tables), *self.derived))
        self._script = f"BEGIN; SET LOCAL lock_timeout = '20s'; SET LOCAL synchronous_commit = off; {deletes}; COMMIT"

    async def empty(self) -> None:
        try:
            await self._connection.execute(self._script)
        except asyncpg.LockNotAvailableError as exc:
            await self._connection.execute("ROLLBACK")
            holders = await self._connection.fetch(_LOCK_HOLDERS)
            raise AssertionError(f"the tables could not be emptied ({exc!r}); open transactions: {holders}") from exc


@pytest.fixture(scope="session")
async def table_cleaner(database_url: str, settings: Settings) -> AsyncIterator[TableCleaner]:
    dsn, kwargs = _asyncpg_dsn(database_url)
    # A connection the test left in a transaction holding row locks would block the cleanup forever: it fails
    # instead, after lock_timeout (set in the cleanup's own transaction).
    connection = await asyncpg.connect(dsn, **kwargs, **driver_options(settings.db_pool_mode))
    try:
        present = {
            row["tablename"]
            for row in await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        ordered = [table.name for table in metadata.sorted_tables if table.name in present - KEPT_TABLES]
        unknown = present - KEPT_TABLES - set(ordered)
        assert not unknown, f"tables without a model would not be emptied between tests: {sorted(unknown)}"
        yield TableCleaner(
            connection, [t for t in ordered if t not in DERIVED_TABLES], [t for t in ordered if t in DERIVED_TABLES]
        )
    finally:
        await connection.close()


@pytest.fixture
async def clean_tables(table_cleaner: TableCleaner) -> AsyncIterator[TableCleaner]:
    """Every table is emptied after the test (fixtures that write depend on this one, so they end before it runs)."""
    yield table_cleaner
    await table_cleaner.empty()


@pytest.fixture
async def db(engine: AsyncEngine, clean_tables: TableCleaner) -> AsyncIterator[AsyncSession]:
    """A session for arranging data and asserting on it; its commits are real (the app sees only committed rows)."""
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        yield session


@pytest.fixture
async def db_connection(engine: AsyncEngine, clean_tables: TableCleaner) -> AsyncIterator[Any]:
    """A connection for statements of a test's own; what it commits is emptied after the test."""
    async with engine.connect() as conn:
        yield conn


@pytest.fixture
def committed_db(clean_tables: TableCleaner) -> None:
    """Real commits on pooled connections, for concurrency tests: every test has them now; kept as a name that
    says what such a test relies on."""


_LOCK_HOLDERS = """
    SELECT pid, application_name, state, wait_event_type, wait_event, now() - xact_start AS open_for, left(query, 200)
    FROM pg_stat_activity
    WHERE datname = current_database() AND xact_start IS NOT NULL AND pid <> pg_backend_pid()
"""


@pytest.fixture
async def client(app: Litestar, clean_tables: TableCleaner) -> AsyncIterator[httpx.AsyncClient]:
    transport = asgi_transport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def committed_client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """``client``, named for tests that rely on its commits being real (every test may now)."""
    return client


@pytest.fixture
def make_user(db: AsyncSession) -> UserMaker:
    return UserMaker(db)


@pytest.fixture
def auth_headers(app: Litestar) -> AuthHeaders:
    return AuthHeaders(app)
