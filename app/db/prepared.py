"""Hot-path statements: written with SQLAlchemy Core, compiled once, run directly on asyncpg.

Why: on the endpoints every client hits (the catalog, "my orders", placing an order, the per-request account
check), SQLAlchemy's per-request work — the session and its transaction, the pool checkout, the ORM compile and DML
layers, result processing, and the ``BEGIN``/``ROLLBACK`` it wraps around a read — cost several times the database
calls themselves (measured here: a product page took 560 µs of CPU through a session and 220 µs this way; placing an
order 4.6 ms and 1.8 ms). A :class:`Prepared` statement is still an
SQLAlchemy statement (tables, columns and their types come from the models), compiled to PostgreSQL's ``$n`` form
when its module is imported; at run time it costs one asyncpg call, which asyncpg prepares once per connection.

Where it runs (a :data:`StatementSource`):

* a :class:`DirectPool` — a small asyncpg pool of the process, borrowed for the length of one statement (outside
  any transaction) or of one :func:`transaction`. This is what the API uses.
* an ``AsyncSession`` — the statement runs on that session's connection, inside its transaction. The test suite
  uses this: its isolation is one transaction per test, which another connection could not see.
* a :class:`Transaction` — an explicit transaction opened by :func:`transaction` on either of the above, for writes
  whose statements all run this way (placing an order, changing its status).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final, TypeAlias

import asyncpg
import msgspec
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement

from app.db.pooling import PoolMode, driver_options, server_settings
from app.db.shared_reads import SharedReads
from app.db.urls import asyncpg_dsn

__all__ = ("DirectPool", "Prepared", "StatementSource", "Transaction", "transaction")

_DIALECT: Final = asyncpg_dialect()  # type: ignore[no-untyped-call]
_DRIVER_KEY: Final = "orders.driver_connection"


#: How long closing a pool waits for connections in use before it cuts them.
CLOSE_GRACE_S: Final = 5.0


class DirectPool:
    """An asyncpg pool for prepared statements, opened and closed with the app (see ``app.main``)."""

    def __init__(self, database_url: str, *, size: int, pool_mode: PoolMode = "session") -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._size = size
        self._pool_mode: PoolMode = pool_mode
        self._pool: asyncpg.Pool | None = None
        #: Identical concurrent reads share round trips, never answering with rows older than the request.
        self.shared = SharedReads()

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=1,
            max_size=self._size,
            init=_json_codecs,
            reset=_keep_session_state,
            server_settings=server_settings(self._pool_mode),
            timeout=5,
            **driver_options(self._pool_mode),
        )

    async def close(self, *, grace: float = CLOSE_GRACE_S) -> None:
        """Close gracefully, waiting ``grace`` seconds at most for connections still in use, then terminate.

        ``asyncpg.Pool.close()`` waits for every acquired connection to come back; a task stuck on one would make
        shutdown hang for good.
        """
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), grace)
            except TimeoutError:
                pool.terminate()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("DirectPool is not open")
        return self._pool


class Transaction:
    """A transaction opened by :func:`transaction`; pass it to :class:`Prepared` methods to run inside it."""

    __slots__ = ("connection", "driver")

    def __init__(self, driver: asyncpg.Connection, connection: Connection | None) -> None:
        self.driver = driver
        self.connection = connection  # SQLAlchemy's, when the transaction runs on a session (for its listeners)


@asynccontextmanager
async def transaction(source: DirectPool | AsyncSession) -> AsyncIterator[Transaction]:
    """Run prepared statements in one transaction; commit when the block ends, roll back on an exception.

    On a :class:`DirectPool` the transaction holds one pooled connection. On a session it is asyncpg's transaction
    on the session's connection: SQLAlchemy has not started one there (it would only on its first statement), and
    when the session already is inside a transaction (a test's) this one nests as a savepoint; afterwards the session
    is committed too, which releases its connection (in tests, the savepoint the session opened).
    """
    if isinstance(source, DirectPool):
        async with source.pool.acquire() as driver, driver.transaction():
            yield Transaction(driver, None)
        return
    driver, connection = await _connections(source)
    async with driver.transaction():
        yield Transaction(driver, connection)
    await source.commit()


#: A bare asyncpg connection runs statements as they come (autocommit, or inside a transaction its owner opened).
StatementSource: TypeAlias = DirectPool | AsyncSession | Transaction | asyncpg.Connection


async def _keep_session_state(_: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release (``RESET ALL; UNLISTEN *; …``: a round trip per statement here).

    Nothing run on this pool changes session state — no ``SET``, ``LISTEN``, advisory lock or cursor — and asyncpg
    still rolls back an open transaction itself before calling this.
    """


def _json_text(value: Any) -> str:
    """JSON parameters may be given as text already (as SQLAlchemy's codec expects) or as Python values."""
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


async def _json_codecs(connection: asyncpg.Connection) -> None:
    # Decode JSON and JSONB like the SQLAlchemy engine does (to Python values), with msgspec.
    for name in ("json", "jsonb"):
        await connection.set_type_codec(name, encoder=_json_text, decoder=msgspec.json.decode, schema="pg_catalog")


async def _connections(session: AsyncSession) -> tuple[asyncpg.Connection, Connection]:
    """The session's connection for its current transaction (a commit hands the connection back to the pool, so
    the cache is only valid while the same session transaction lasts)."""
    transaction = session.sync_session.get_transaction()
    cached: tuple[object, asyncpg.Connection, Connection] | None = session.info.get(_DRIVER_KEY)
    if cached is None or transaction is None or cached[0] is not transaction:
        connection = await session.connection()
        driver: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
        assert connection.sync_connection is not None  # set while the AsyncConnection is open
        cached = (session.sync_session.get_transaction(), driver, connection.sync_connection)
        session.info[_DRIVER_KEY] = cached
    return cached[1], cached[2]


def _announce(connection: Connection, sql: str, args: list[Any]) -> None:
    """Fire SQLAlchemy's ``before_cursor_execute`` listeners, so tracing and statement counters see this too."""
    for listener in connection.dispatch.before_cursor_execute:
        listener(connection, None, sql, args, None, False)


class Prepared:
    """A Core statement with named bind parameters, ready to run with :meth:`fetch` and friends."""

    __slots__ = ("_fixed", "_names", "sql")

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.sql: str = str(compiled)
        self._names: tuple[str, ...] = tuple(getattr(compiled, "positiontup", None) or ())
        # Literals written into the statement (``stock > 0``) are bind parameters too; keep their values.
        bind_names: dict[Any, str] = getattr(compiled, "bind_names", {})
        self._fixed: dict[str, Any] = {
            name: bind.effective_value for bind, name in bind_names.items() if not bind.required
        }

    def _args(self, params: Mapping[str, Any]) -> list[Any]:
        values = {**self._fixed, **params} if self._fixed else params
        args: list[Any] = [values[name] for name in self._names]
        return args

    async def _runner(self, source: StatementSource, args: list[Any]) -> asyncpg.Connection | asyncpg.Pool:
        """Where to run: the pool itself, or a connection (after telling SQLAlchemy's listeners about it)."""
        if isinstance(source, DirectPool):
            return source.pool
        if isinstance(source, asyncpg.Connection):
            return source
        if isinstance(source, Transaction):
            if source.connection is not None:
                _announce(source.connection, self.sql, args)
            return source.driver
        driver, connection = await _connections(source)
        _announce(connection, self.sql, args)
        return driver

    async def fetch(self, source: StatementSource, **params: Any) -> list[asyncpg.Record]:
        args = self._args(params)
        rows: list[asyncpg.Record] = await (await self._runner(source, args)).fetch(self.sql, *args)
        return rows

    async def fetch_shared(self, source: StatementSource, **params: Any) -> list[asyncpg.Record]:
        """:meth:`fetch` for a read-only statement: on the pool, identical fetches in flight together share round
        trips (see :mod:`app.db.shared_reads`); elsewhere (a session or transaction) just :meth:`fetch`."""
        if not isinstance(source, DirectPool):
            return await self.fetch(source, **params)
        args = self._args(params)
        pool = source.pool

        async def load() -> list[asyncpg.Record]:
            rows: list[asyncpg.Record] = await pool.fetch(self.sql, *args)
            return rows

        key = (self.sql, *(tuple(arg) if isinstance(arg, list) else arg for arg in args))
        return await source.shared.read(key, load)

    async def fetchrow(self, source: StatementSource, **params: Any) -> asyncpg.Record | None:
        args = self._args(params)
        return await (await self._runner(source, args)).fetchrow(self.sql, *args)

    async def fetchval(self, source: StatementSource, **params: Any) -> Any:
        args = self._args(params)
        return await (await self._runner(source, args)).fetchval(self.sql, *args)

    async def fetch_committed(self, source: DirectPool | AsyncSession, **params: Any) -> list[asyncpg.Record]:
        """Run one writing statement as a transaction of its own and return its rows.

        On the pool that is a single round trip (a statement is atomic by itself); on a session, the session is
        committed afterwards, as :func:`transaction` does.
        """
        rows = await self.fetch(source, **params)
        if isinstance(source, AsyncSession):
            await source.commit()
        return rows

    async def fetchrow_committed(self, source: DirectPool | AsyncSession, **params: Any) -> asyncpg.Record | None:
        """:meth:`fetch_committed`, for one row (or none)."""
        rows = await self.fetch_committed(source, **params)
        return rows[0] if rows else None

    async def execute(self, source: StatementSource, **params: Any) -> str:
        """Run a statement that returns no rows; returns PostgreSQL's status tag (``UPDATE 3``)."""
        args = self._args(params)
        status: str = await (await self._runner(source, args)).execute(self.sql, *args)
        return status

    def __repr__(self) -> str:
        return f"Prepared({self.sql!r})"
