"""PostgreSQL's failures reach clients as 503s that say when to retry — classified by SQLSTATE, never a 500.

Each failure is real: PostgreSQL itself cancels a statement that waited too long for a lock, a table or column is
renamed (committed, and put back afterwards), or a trigger raises the exact SQLSTATE a deadlock, a serialization
failure or an exhausted connection limit would (those three cannot be provoked on demand on a shared server).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from advanced_alchemy.alembic.commands import AlembicCommands
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.components import components_of, migration_heads
from app.config import MIGRATIONS_VERSION_TABLE, Settings, alchemy_config
from app.core.health import ReadinessProbe
from app.models import metadata
from tests.conftest import Servers, _admin_execute
from tests.integration.core.dedicated_app import running_app
from tests.support import AuthHeaders, UserMaker

ADDRESS = {
    "recipient_name": "Ada Lovelace",
    "line1": "1 Main Street",
    "city": "London",
    "postal_code": "N1 9GU",
    "country": "GB",
}


def _assert_503(response: httpx.Response, code: str, retry_after: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == retry_after
    body = response.json()
    assert body["code"] == code
    for leak in ("products", "SELECT", "asyncpg", "Error", "canceling"):
        assert leak not in body["detail"], leak


@pytest.fixture
async def products_locked(engine: AsyncEngine) -> AsyncIterator[None]:
    """Another transaction holds the products table exclusively until the test ends."""
    async with engine.connect() as locker:
        await locker.execute(text("LOCK TABLE products IN ACCESS EXCLUSIVE MODE"))
        yield
        await locker.rollback()


async def _fresh_connections(app: Litestar) -> None:
    """The app's direct pool opens new connections on their next use: PostgreSQL revalidates a statement a
    connection prepared earlier by the table's id, so a connection that ran it before a rename would still find the
    renamed table, where a freshly deployed process (what these tests stand for) would not."""
    await components_of(app).direct.pool.expire_connections()


@asynccontextmanager
async def _committed(engine: AsyncEngine, app: Litestar, do: str, undo: str) -> AsyncIterator[None]:
    """Run the statements of ``do`` committed, then use fresh app connections; ``undo`` it all afterwards."""
    await _script(engine, do)
    await _fresh_connections(app)
    try:
        yield
    finally:
        await _script(engine, undo)
        await _fresh_connections(app)


async def _script(engine: AsyncEngine, statements: str) -> None:
    """Several statements in one round trip, each committed (asyncpg's simple query protocol, outside a transaction)."""
    async with engine.connect() as conn:
        await (await conn.get_raw_connection()).driver_connection.execute(statements)  # type: ignore[union-attr]


@pytest.mark.parametrize("setting", ["statement_timeout", "lock_timeout"])
async def test_a_statement_cancelled_by_a_timeout_is_503_busy(
    client: httpx.AsyncClient,
    app: Litestar,
    engine: AsyncEngine,
    settings: Settings,
    products_locked: None,
    setting: str,
) -> None:
    if settings.db_pool_mode == "transaction":
        # The timeout comes from ALTER DATABASE … SET, which only new server sessions read; a transaction-pooling
        # proxy keeps its server connections, so the request would wait on the lock for good.
        pytest.skip("ALTER DATABASE settings reach only new server sessions, which a pooling proxy does not open")
    database = engine.url.database
    async with _committed(
        engine,
        app,
        f"ALTER DATABASE \"{database}\" SET {setting} = '200ms'",
        f'ALTER DATABASE "{database}" RESET {setting}',
    ):
        response = await client.get(f"/products/{uuid.uuid4()}")

    _assert_503(response, "database_busy", "1")


async def test_a_renamed_table_is_503_deploy_error(
    client: httpx.AsyncClient, app: Litestar, engine: AsyncEngine
) -> None:
    async with _committed(
        engine,
        app,
        "ALTER TABLE products RENAME TO products_elsewhere",
        "ALTER TABLE products_elsewhere RENAME TO products",
    ):
        response = await client.get(f"/products/{uuid.uuid4()}")

    _assert_503(response, "database_misconfigured", "30")


async def test_a_renamed_column_is_503_deploy_error(
    client: httpx.AsyncClient, app: Litestar, engine: AsyncEngine
) -> None:
    async with _committed(
        engine,
        app,
        "ALTER TABLE products RENAME COLUMN description TO description_old",
        "ALTER TABLE products RENAME COLUMN description_old TO description",
    ):
        response = await client.get("/products")

    _assert_503(response, "database_misconfigured", "30")


def _failing_trigger(name: str, body: str) -> tuple[str, str]:
    """A trigger on inserts into ``addresses`` that runs ``body``, and the statement that removes it again."""
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body}; END $$; "
        f"CREATE TRIGGER {name} BEFORE INSERT ON addresses FOR EACH ROW EXECUTE FUNCTION {name}()",
        f"DROP TRIGGER {name} ON addresses; DROP FUNCTION {name}()",
    )


@pytest.mark.parametrize(
    "sqlstate",
    ["40001", "40P01", "53300", "55P03", "57014"],
    ids=["serialization_failure", "deadlock_detected", "too_many_connections", "lock_not_available", "query_canceled"],
)
async def test_a_transient_database_failure_is_503_busy(
    client: httpx.AsyncClient,
    app: Litestar,
    engine: AsyncEngine,
    make_user: UserMaker,
    auth_headers: AuthHeaders,
    sqlstate: str,
) -> None:
    user = await make_user()
    trigger = _failing_trigger("fail_like_postgres", f"RAISE EXCEPTION 'simulated' USING ERRCODE = '{sqlstate}'")

    async with _committed(engine, app, *trigger):
        response = await client.post("/addresses", json=ADDRESS, headers=auth_headers(user))

    _assert_503(response, "database_busy", "1")
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM addresses"))).scalar_one() == 0


async def test_an_error_nobody_classified_is_500_revealing_nothing(
    client: httpx.AsyncClient, app: Litestar, engine: AsyncEngine, make_user: UserMaker, auth_headers: AuthHeaders
) -> None:
    user = await make_user()

    async with _committed(engine, app, *_failing_trigger("fail_oddly", "RAISE EXCEPTION 'secret internals'")):
        response = await client.post("/addresses", json=ADDRESS, headers=auth_headers(user))

    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "secret internals" not in response.text


def _expected_columns() -> dict[str, frozenset[str]]:
    return {table.name: frozenset(table.columns.keys()) for table in metadata.sorted_tables}


async def test_readiness_names_a_missing_column(engine: AsyncEngine, redis: Any) -> None:
    expected = _expected_columns()
    expected["products"] |= {"colour"}
    probe = ReadinessProbe(
        engine,
        redis,
        version_table=MIGRATIONS_VERSION_TABLE,
        expected_heads=migration_heads(),
        expected_columns=expected,
    )

    assert await probe.check() == {"database": "schema mismatch: column products.colour missing", "redis": "ok"}


@pytest.fixture
async def database_without_products(servers: Servers, settings: Settings) -> AsyncIterator[str]:
    """A database of its own, migrated, whose products table was then renamed by hand (committed)."""
    name = f"orders_deploy_{uuid.uuid4().hex[:10]}"
    await _admin_execute(servers.admin_database_url, f'CREATE DATABASE "{name}"')
    url = make_url(servers.admin_database_url).set(database=name).render_as_string(hide_password=False)
    try:
        own = Settings.from_env(
            {
                "DATABASE_URL": url,
                "REDIS_URL": str(settings.redis_url),
                "JWT_SECRET": "x" * 32,
                "DB_POOL_MODE": settings.db_pool_mode,
            }
        )
        await asyncio.to_thread(AlembicCommands(sqlalchemy_config=alchemy_config(own)).upgrade, revision="head")
        await _admin_execute(url, "ALTER TABLE products RENAME TO products_old")
        yield url
    finally:
        await _admin_execute(servers.admin_database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_a_missing_table_makes_ready_503_naming_it_and_requests_503(
    settings: Settings, database_without_products: str
) -> None:
    async with running_app(settings, DATABASE_URL=database_without_products) as client:
        ready = await client.get("/ready")
        listed = await client.get("/products")

    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "schema mismatch: table products missing"
    assert "table products missing" in ready.json()["detail"]
    _assert_503(listed, "database_misconfigured", "30")


TERMINATE_APP_BACKENDS = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'orders-service' AND pid <> pg_backend_pid()
"""


async def test_connections_killed_by_the_server_are_never_a_500(settings: Settings, engine: AsyncEngine) -> None:
    """An administrator (or a failover) ends every connection of a running app: PostgreSQL's admin_shutdown."""
    async with running_app(settings) as client:
        for _ in range(3):  # every pool holds connections now
            assert (await client.get(f"/products/{uuid.uuid4()}")).status_code == 404
            assert (await client.get("/products")).status_code == 200
        async with engine.connect() as admin:
            killed = (await admin.execute(text(TERMINATE_APP_BACKENDS))).scalar_one()
        after = [await client.get(f"/products/{uuid.uuid4()}"), await client.get("/products")]
        recovered = [await client.get(f"/products/{uuid.uuid4()}"), await client.get("/products")]

    assert killed >= 1
    for response in after:
        assert response.status_code in {200, 404, 503}, response.text
        if response.status_code == 503:
            assert response.json()["code"] == "service_unavailable"
            assert response.headers["retry-after"] == "1"
    assert [r.status_code for r in recovered] == [404, 200]
