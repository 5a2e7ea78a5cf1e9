"""Driver options for the two ``DB_POOL_MODE`` values: a session per connection, or a transaction-pooling proxy.

``session`` (the default): each asyncpg connection is a PostgreSQL session of its own, so asyncpg prepares every
statement once per connection under a name (``__asyncpg_stmt_1__``) and later runs it with one Bind/Execute.

``transaction``: a proxy such as PgBouncer (``pool_mode=transaction``), Supavisor or RDS Proxy hands the client's
connection a different server connection for each transaction (and for each statement outside one). A named
statement prepared on one server is then missing on the next, or "already exists" there — the service answered 500
on every request. In this mode asyncpg's statement cache is off, which makes every statement unnamed, and
:class:`UnnamedStatementsConnection` keeps those unnamed statements (their parameter and result types) per client
connection, so each run is still one round trip: asyncpg sends ``Parse/Bind/Execute/Sync`` together, and the proxy
keeps one server connection until ``Sync``. What that costs — the server parses and plans the statement on every
run — is measured by ``tests/benchmarks/pooled_statements.py`` (README, "Behind a transaction-pooling proxy").

SQLAlchemy's own statement cache (``prepared_statement_cache_size``) stays on: with asyncpg 0.30+ and the asyncpg
cache off, ``Connection.prepare()`` makes unnamed statements, so SQLAlchemy's cache holds them the same way.
"""

# ruff: noqa: ASYNC109 - the methods below keep asyncpg's signatures, ``timeout`` included

from __future__ import annotations

import contextlib
from typing import Any, Final, Literal

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement

__all__ = ("PoolMode", "UnnamedStatementsConnection", "driver_options", "server_settings")

PoolMode = Literal["session", "transaction"]

#: Every session of the service runs without JIT compilation. Named prepared statements get generic plans, whose
#: estimates cannot know a page holds at most 100 rows, and the cost of such a plan over a million orders passed
#: ``jit_above_cost``: PostgreSQL then spent 300-400 ms compiling a list query that runs in 2-7 ms. Short OLTP
#: statements never gain from JIT.
NO_JIT: Final = {"jit": "off"}


def server_settings(mode: PoolMode) -> dict[str, str]:
    """The startup parameters of a connection.

    ``jit`` is one PgBouncer refuses ("unsupported startup parameter"), and a ``SET`` would stay behind on a server
    connection that the proxy hands to other clients, so in transaction mode only ``application_name`` is sent. There
    unnamed statements are planned per run with their parameters (custom plans, whose estimates know the page size),
    which is not where the JIT cost came from; operators who want it off there set it on the role
    (``ALTER ROLE … SET jit = off``, README "Behind a transaction-pooling proxy").
    """
    settings = {"application_name": "orders-service"}
    return settings if mode == "transaction" else settings | NO_JIT


#: Statements kept per connection in transaction mode; the service runs about 60 distinct ones.
UNNAMED_CACHE_SIZE: Final = 256


class UnnamedStatementsConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no type hints
    """An asyncpg connection (statement cache off) that reuses its unnamed statements.

    asyncpg marks an unnamed statement "unprepared" when its cache is off, so every run re-sends ``Parse`` in the
    same message group as ``Bind``/``Execute``: correct whichever server connection the proxy picks. Without this
    class, ``fetch(sql, ...)`` would also re-send ``Parse/Describe`` in a round trip of its own before each run.
    """

    __slots__ = ("_unnamed",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: asyncpg's statement states (parameter and result types, codecs) by query. A ``PreparedStatement`` object
        #: cannot be kept instead: a pool connection's objects refuse to run once the connection went back to the pool.
        self._unnamed: dict[str, Any] = {}

    async def _unnamed_statement(self, query: str, timeout: float | None) -> PreparedStatement:
        state = self._unnamed.get(query)
        if state is None:
            # What ``Connection.prepare()`` does with the cache off: Parse/Describe once, an unnamed "unprepared" state.
            state = await self._get_statement(query, timeout, named=False, use_cache=False)
            if len(self._unnamed) >= UNNAMED_CACHE_SIZE:
                del self._unnamed[next(iter(self._unnamed))]
            self._unnamed[query] = state
        return PreparedStatement(self, query, state)

    async def reload_schema_state(self) -> None:
        """SQLAlchemy calls this after DDL: the kept parameter and result types may be stale too."""
        self._unnamed.clear()
        await super().reload_schema_state()

    async def _run(self, query: str, args: tuple[Any, ...], timeout: float | None, *, rows: int) -> Any:
        """Run the kept statement: all rows (``rows=0``), the first row (``rows=1``) or nothing but the status."""
        statement = await self._unnamed_statement(query, timeout)
        with contextlib.ExitStack() as logging:
            if self._query_loggers:  # asyncpg logs queries in ``Connection._execute`` only; keep them logged here too
                logging.enter_context(self._time_and_log(query, args, timeout))
            if rows == 1:
                return await statement.fetchrow(*args, timeout=timeout)
            records = await statement.fetch(*args, timeout=timeout)
            return records if rows == 0 else statement.get_statusmsg()

    async def fetch(self, query: str, *args: Any, timeout: float | None = None, record_class: Any = None) -> list[Any]:
        if record_class is not None:
            records: list[Any] = await super().fetch(query, *args, timeout=timeout, record_class=record_class)
            return records
        records = await self._run(query, args, timeout, rows=0)
        return records

    async def fetchrow(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,
        record_class: Any = None,
    ) -> asyncpg.Record | None:
        if record_class is not None:
            return await super().fetchrow(query, *args, timeout=timeout, record_class=record_class)
        record: asyncpg.Record | None = await self._run(query, args, timeout, rows=1)
        return record

    async def fetchval(self, query: str, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        record = await self._run(query, args, timeout, rows=1)
        return None if record is None else record[column]

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        if not args:  # the simple query protocol: no statement at all (BEGIN, SET LOCAL ..., several statements)
            status: str = await super().execute(query, timeout=timeout)
            return status
        status = await self._run(query, args, timeout, rows=-1)
        return status


def driver_options(pool_mode: PoolMode) -> dict[str, Any]:
    """Keyword arguments for ``asyncpg.connect``/``create_pool`` (and SQLAlchemy's ``connect_args``) in this mode."""
    if pool_mode == "transaction":
        return {"statement_cache_size": 0, "connection_class": UnnamedStatementsConnection}
    return {}
