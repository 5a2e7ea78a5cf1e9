"""Every SQL statement the app keeps ready is prepared by PostgreSQL against the migrated schema.

Preparing parses, resolves every table, column, function and type, and plans, without running anything: a column
renamed in a migration (or a typo in a ``text()`` statement) fails here, in CI, instead of on the first request that
runs the statement. The statements are found, not listed: every module-level :class:`~app.db.prepared.Prepared`,
SQLAlchemy statement and plain-SQL string in ``app``, and every variant of the cached statement builders.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import itertools
import pkgutil
import re
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select, TextClause
from sqlalchemy.sql.dml import UpdateBase

import app
from app.db.prepared import Prepared

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
#: Development-only modules that start servers or need a display: they hold no statements.
_SKIPPED = ("app.dev",)
#: A module-level string that is a statement (the webhook queue keeps its statements as plain SQL).
_PLAIN_SQL = re.compile(r"\s*(WITH|SELECT|INSERT|UPDATE|DELETE)\s", re.IGNORECASE)


def _modules() -> Iterator[Any]:
    for info in pkgutil.walk_packages(app.__path__, prefix="app."):
        if not info.name.startswith(_SKIPPED):
            yield importlib.import_module(info.name)


def _variants(builder: Any) -> Iterator[Prepared]:
    """Every combination of a cached statement builder's flags (``bool``: both; ``bool | None``: all three)."""
    choices = {"bool": (False, True), "bool | None": (None, False, True)}
    parameters = inspect.signature(builder).parameters.values()
    if not parameters or any(p.annotation not in choices for p in parameters):
        return  # not a statement builder
    names = [p.name for p in parameters]
    for values in itertools.product(*(choices[p.annotation] for p in parameters)):
        built = builder(**dict(zip(names, values, strict=True)))
        yield from (item for item in (built if isinstance(built, tuple) else (built,)) if isinstance(item, Prepared))


def _statements() -> dict[str, str]:
    """Name → SQL, each statement once (a module that imports another's statement does not count twice)."""
    found: dict[str, str] = {}
    for module in _modules():
        for name, value in vars(module).items():
            where = f"{module.__name__}.{name}"
            if isinstance(value, Prepared):
                found.setdefault(value.sql, where)
            elif isinstance(value, str) and _PLAIN_SQL.match(value):
                found.setdefault(value, where)  # plain SQL with $n parameters, run on a driver connection
            elif isinstance(value, Select | UpdateBase | TextClause):
                found.setdefault(str(value.compile(dialect=_DIALECT)), where)
            elif isinstance(value, functools._lru_cache_wrapper) and value.__module__ == module.__name__:
                for n, variant in enumerate(_variants(value)):
                    found.setdefault(variant.sql, f"{where}#{n}")
    return {where: sql for sql, where in found.items()}


STATEMENTS = _statements()


def test_the_statements_are_found() -> None:
    # The hot paths and the outbox: if these move, the discovery above must still find them.
    for name in (
        "app.domain.orders.services._PLACE_ORDER",
        "app.events.outbox._ASSIGN",
        "app.testing.seed._TAKE_STOCK",
    ):
        assert name in STATEMENTS


@pytest.mark.parametrize("name", sorted(STATEMENTS))
async def test_statement_prepares_against_the_migrated_schema(engine: AsyncEngine, name: str) -> None:
    async with engine.connect() as connection:
        driver: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
        await driver.prepare(STATEMENTS[name])
