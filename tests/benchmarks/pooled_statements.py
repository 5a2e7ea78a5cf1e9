"""Which way of running the hot statements survives a transaction-pooling proxy, and what each costs.

Behind PgBouncer in ``pool_mode=transaction`` a named prepared statement does not survive its transaction (the next
one may run on another server connection). This runs the two hottest reads of the service — the catalog page (20
products and their total) and a product by id, the real ``Prepared`` statements of ``app.domain.catalog`` — on an
asyncpg pool of 4 connections, ``--clients`` concurrent callers, in each of these ways:

* ``direct, named (session mode)``: today's default, asyncpg's named statement cache, straight to PostgreSQL;
* ``direct, unnamed kept``: ``DB_POOL_MODE=transaction``'s way, straight to PostgreSQL (the parse/plan cost alone);
* ``pooler, unnamed kept``: the same through the proxy: ``UnnamedStatementsConnection``, one round trip per run
  (``Parse/Bind/Execute/Sync``);
* ``pooler, unnamed per call``: asyncpg with ``statement_cache_size=0`` alone: ``Parse/Describe`` in a round trip of
  its own before every run;
* ``pooler, named in a transaction``: ``BEGIN``, prepare under a fresh name, run, ``DEALLOCATE``, ``COMMIT``.

It creates a scratch database on ``--direct-url``'s server, applies the migrations, inserts 200 products, and drops
the database at the end. ``--pooled-url`` is a proxy in front of the same server (any database name; the scratch
one is used)::

    export DIRECT=postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
    DATABASE_URL=$DIRECT .ci/with-pgbouncer sh -c \\
        'uv run python -m tests.benchmarks.pooled_statements --direct-url "$DIRECT" --pooled-url "$DATABASE_URL"'

Prints statements per second and the median latency per variant. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from advanced_alchemy.alembic.commands import AlembicCommands
from sqlalchemy.engine import make_url

from app.config import Settings, alchemy_config
from app.db.pooling import driver_options
from app.db.prepared import Prepared
from app.db.urls import asyncpg_dsn
from app.domain.catalog import services as catalog

_PRODUCTS = """
    INSERT INTO products (id, sku, name, description, price_cents, stock, is_active, created_at, updated_at)
    SELECT gen_random_uuid(), 'SKU-' || i, 'Product ' || i, '', 100 + i, 1000, true, now(), now()
    FROM generate_series(1, 200) AS i
"""

Run = Callable[[asyncpg.Connection, Prepared, dict[str, Any]], Awaitable[Any]]


async def _kept(connection: asyncpg.Connection, statement: Prepared, params: dict[str, Any]) -> Any:
    # Named (session mode) or unnamed kept (transaction mode): whichever the connection class does with fetch().
    return await connection.fetch(statement.sql, *statement._args(params))


async def _named_in_transaction(connection: asyncpg.Connection, statement: Prepared, params: dict[str, Any]) -> Any:
    name = f"s_{uuid.uuid4().hex}"
    async with connection.transaction():
        prepared = await connection.prepare(statement.sql, name=name)
        rows = await prepared.fetch(*statement._args(params))
        await connection.execute(f"DEALLOCATE {name}")
    return rows


async def _measure(
    dsn: str, options: dict[str, Any], run: Run, calls: list[tuple[Prepared, dict[str, Any]]], clients: int
) -> tuple[float, float]:
    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=4, **options)
    latencies: list[float] = []

    async def client(offset: int) -> None:
        for statement, params in calls[offset::clients]:
            async with pool.acquire() as connection:
                started = time.perf_counter()
                await run(connection, statement, params)
                latencies.append(time.perf_counter() - started)

    try:
        await client(0)  # warm-up: every connection meets the statements (types, plans)
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    return len(latencies) / elapsed, statistics.median(latencies) * 1000


#: Any 32+ characters: a set DATABASE_URL requires a JWT secret of its own (none is used here).
_BENCH_SECRET = "pooled-statements-benchmark-secret-0123456789abcdef"


async def _main(direct_url: str, pooled_url: str, count: int, clients: int, rounds: int) -> None:
    database = f"pooled_statements_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(direct_url))
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        url = make_url(direct_url).set(database=database).render_as_string(hide_password=False)
        pooled = make_url(pooled_url).set(database=database).render_as_string(hide_password=False)
        settings = Settings.from_env({"DATABASE_URL": url, "JWT_SECRET": _BENCH_SECRET})
        await asyncio.to_thread(AlembicCommands(sqlalchemy_config=alchemy_config(settings)).upgrade, revision="head")
        setup = await asyncpg.connect(asyncpg_dsn(url))
        await setup.execute(_PRODUCTS)
        await setup.execute("ANALYZE products")
        ids = [row["id"] for row in await setup.fetch("SELECT id FROM products")]
        await setup.close()
        page, _ = catalog._page_queries(search=False, in_stock=None)
        calls = [
            (page, {"limit": 20, "offset": 0}) if i % 2 else (catalog._BY_ID, {"product_id": ids[i % len(ids)]})
            for i in range(count)
        ]
        variants: list[tuple[str, str, dict[str, Any], Run]] = [
            ("direct, named (session mode)", url, driver_options("session"), _kept),
            ("direct, unnamed kept", url, driver_options("transaction"), _kept),
            ("pooler, unnamed kept", pooled, driver_options("transaction"), _kept),
            ("pooler, unnamed per call", pooled, {"statement_cache_size": 0}, _kept),
            ("pooler, named in a transaction", pooled, {"statement_cache_size": 0}, _named_in_transaction),
        ]
        results: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in variants}
        for _ in range(rounds):  # interleaved, so drift of a shared machine affects every variant alike
            for name, dsn, options, run in variants:
                results[name].append(await _measure(asyncpg_dsn(dsn), options, run, calls, clients))
        print(
            f"{count} statements per round (catalog page and product by id, alternating), {clients} clients, "
            f"pool of 4, best of {rounds} rounds"
        )
        print(f"{'variant':34} {'statements/s':>13} {'median ms':>10}")
        for name, figures in results.items():
            rate, median = max(figures)
            print(f"{name:34} {rate:13.0f} {median:10.3f}")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--direct-url", required=True, help="postgresql+asyncpg:// URL of the server")
    parser.add_argument("--pooled-url", required=True, help="the same server through a transaction-pooling proxy")
    parser.add_argument("--statements", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.statements < 10 or args.clients < 1:
        sys.exit("--statements must be at least 10 and --clients at least 1")
    asyncio.run(_main(args.direct_url, args.pooled_url, args.statements, args.clients, args.rounds))


if __name__ == "__main__":
    main()
