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
  any transaction) or of one :func:`transaction`. This is what the API and the worker use, and the tests too (they
  commit for real and empty the tables after each test), so every test runs the statements production runs.
* a :class:`Transaction` — an explicit transaction opened by :func:`transaction` on the pool, for writes whose
  statements all run this way (placing an order with an idempotency key, changing its status).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final, TypeAlias

import asyncpg
import msgspec
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import ClauseElement

from app.db.pooling import PoolMode, driver_options, server_settings
from app.db.shared_reads import SharedReads
from app.db.urls import asyncpg_dsn

__all__ = ("DirectPool", "Prepared", "StatementSource", "Transaction", "transaction")

_DIALECT: Final = asyncpg_dialect()  # type: ignore[no-untyped-call]


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
        self._observer: Callable[[str], None] | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=1,
            max_size=self._size,
            init=self._init_connection,
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

    @asynccontextmanager
    async def observed(self, observer: Callable[[str], None]) -> AsyncIterator[None]:
        """Report the SQL of every statement this pool runs meanwhile to ``observer`` (tests count statements so).

        The pool's connections are replaced on their next use, and the new ones carry an asyncpg query logger; when
        the block ends they are replaced again by plain ones. Nothing is attached otherwise: while a logger is
        attached asyncpg times and records every query, work production has no use for.
        """
        self._observer = observer
        await self.pool.expire_connections()
        try:
            yield
        finally:
            self._observer = None
            await self.pool.expire_connections()

    async def _init_connection(self, connection: asyncpg.Connection) -> None:
        await _json_codecs(connection)
        if (observer := self._observer) is not None:
            connection.add_query_logger(lambda record: observer(record.query))


class Transaction:
    """A transaction opened by :func:`transaction`; pass it to :class:`Prepared` methods to run inside it."""

    __slots__ = ("driver",)

    def __init__(self, driver: asyncpg.Connection) -> None:
        self.driver = driver


@asynccontextmanager
async def transaction(source: DirectPool) -> AsyncIterator[Transaction]:
    """Run prepared statements in one transaction on one pooled connection; commit when the block ends, roll back
    on an exception."""
    async with source.pool.acquire() as driver, driver.transaction():
        yield Transaction(driver)


#: A bare asyncpg connection runs statements as they come (autocommit, or inside a transaction its owner opened).
StatementSource: TypeAlias = DirectPool | Transaction | asyncpg.Connection


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

    @staticmethod
    def _runner(source: StatementSource) -> asyncpg.Connection | asyncpg.Pool:
        """Where to run: the pool itself (one statement, atomic on its own), a bare connection, or the transaction's."""
        if isinstance(source, DirectPool):
            return source.pool
        if isinstance(source, asyncpg.Connection):
            return source
        return source.driver

    async def fetch(self, source: StatementSource, **params: Any) -> list[asyncpg.Record]:
        args = self._args(params)
        rows: list[asyncpg.Record] = await self._runner(source).fetch(self.sql, *args)
        return rows

    async def fetch_shared(self, source: StatementSource, **params: Any) -> list[asyncpg.Record]:
        """:meth:`fetch` for a read-only statement: on the pool, identical fetches in flight together share round
        trips (see :mod:`app.db.shared_reads`); in a transaction just :meth:`fetch`."""
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
        return await self._runner(source).fetchrow(self.sql, *args)

    async def fetchval(self, source: StatementSource, **params: Any) -> Any:
        args = self._args(params)
        return await self._runner(source).fetchval(self.sql, *args)

    async def execute(self, source: StatementSource, **params: Any) -> str:
        """Run a statement that returns no rows; returns PostgreSQL's status tag (``UPDATE 3``)."""
        args = self._args(params)
        status: str = await self._runner(source).execute(self.sql, *args)
        return status

    def __repr__(self) -> str:
        return f"Prepared({self.sql!r})"
