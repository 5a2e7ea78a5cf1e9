"""Order lists at 10,000 and 1,000,000 orders: does a request cost the same when the data grew 100 times?

For each size: a database of its own (created with a unique name, migrated, filled by ``litestar seed``'s seeder with
1,000 users and 5,000 products, then ``VACUUM ANALYZE`` as autovacuum does after a bulk load), one uvicorn API
process on it, and every order-list request of issue 15, one at a time: one warm-up, then the median of ``--runs``.
The databases are dropped at the end unless ``--keep``; ``--reuse SIZE=URL`` measures an existing seeded database
instead of making one (seeding a million orders takes minutes).

    uv run python -m tests.benchmarks.order_lists --redis-url redis://127.0.0.1:6379/9
    uv run python -m tests.benchmarks.order_lists --redis-url redis://127.0.0.1:6379/9 \\
        --reuse 1000000=postgresql+asyncpg://postgres@127.0.0.1:5432/bench_1m

Prints one table (milliseconds, and 1M / 10k) and each seed's rate. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from advanced_alchemy.alembic.commands import AlembicCommands
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.config import PROJECT_ROOT, Settings, alchemy_config
from app.core.cursors import CursorCodec
from app.db.urls import asyncpg_dsn
from app.domain.orders.services import OrderCursor
from app.testing.seed import Seeder, SeedOptions
from tests.support import AuthHeaders, UserMaker

SECRET = "order-lists-benchmark-secret-0123456789abcdef012345"
AS_OF = datetime(2026, 12, 1, tzinfo=UTC)
#: The customer measured: the one whose share of all orders is closest to that of the issue's (1,770 of 1M).
CUSTOMER_SHARE = 1_770 / 1_000_000


@dataclass
class Size:
    orders: int
    url: str
    created: bool
    seed_rate: float | None = None
    timings: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(make_url(url).set(database="postgres").render_as_string(False)))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _prepare(orders: int, server_url: str, args: argparse.Namespace) -> Size:
    """A migrated database seeded with ``orders`` orders (or the one ``--reuse`` names for that size)."""
    if orders in args.reuse:
        return Size(orders, args.reuse[orders], created=False)
    name = f"bench_orders_{orders}_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    size = Size(orders, url, created=True)
    settings = Settings.from_env({"DATABASE_URL": url, "REDIS_URL": args.redis_url, "JWT_SECRET": SECRET})
    await asyncio.to_thread(AlembicCommands(sqlalchemy_config=alchemy_config(settings)).upgrade, revision="head")
    engine = create_async_engine(url)
    options = SeedOptions(users=1_000, products=5_000, orders=orders, seed=args.seed, as_of=AS_OF)
    async with engine.connect() as connection:
        report = await Seeder(options).run(connection)
    await engine.dispose()
    size.seed_rate = report.rows / report.seconds
    print(f"seeded {orders:,} orders: {report.rows:,} rows in {report.seconds:.1f} s = {size.seed_rate:,.0f} rows/s")
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return size


@contextlib.asynccontextmanager
async def _api(url: str, redis_url: str) -> AsyncIterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
        "EMAIL_BACKEND": "console",
    }
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--no-access-log"]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=PROJECT_ROOT, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(150):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{base}/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError("the API did not become ready")
        yield base
    finally:
        process.terminate()
        await process.wait()


@dataclass(frozen=True)
class _Subjects:
    admin: dict[str, str]
    customer: dict[str, str]
    customer_orders: int
    top_user: uuid.UUID
    address_id: uuid.UUID
    product_id: uuid.UUID
    oldest_admin_cursor: str
    oldest_customer_cursor: str


async def _subjects(size: Size) -> _Subjects:
    """An admin, the measured customer, what placing an order needs, and cursors to the oldest pages."""
    engine = create_async_engine(size.url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        admin = await UserMaker(session)(roles=("admin",))
    await engine.dispose()
    tokens = AuthHeaders.for_settings(Settings.from_env({"JWT_SECRET": SECRET}))
    codec = CursorCodec(SECRET)
    connection = await asyncpg.connect(asyncpg_dsn(size.url))
    try:
        counts = await connection.fetch("SELECT user_id, sum(orders)::int AS n FROM order_counts GROUP BY user_id")
        target = size.orders * CUSTOMER_SHARE
        customer = min(counts, key=lambda row: (abs(row["n"] - target), row["user_id"]))
        top = max(counts, key=lambda row: row["n"])
        address_id = await connection.fetchval("SELECT id FROM addresses WHERE user_id = $1", customer["user_id"])
        product_id = await connection.fetchval(
            "SELECT id FROM products WHERE is_active ORDER BY stock DESC, id LIMIT 1"
        )
        # The position just before the oldest 100 orders: the next page is the last one.
        oldest = await connection.fetchrow(
            "SELECT created_at, id FROM orders ORDER BY created_at, id OFFSET 100 LIMIT 1"
        )
        oldest_own = await connection.fetchrow(
            "SELECT created_at, id FROM orders WHERE user_id = $1 ORDER BY created_at, id OFFSET $2 LIMIT 1",
            customer["user_id"],
            min(20, customer["n"] - 1),
        )
    finally:
        await connection.close()
    return _Subjects(
        admin=tokens(admin),
        customer={"Authorization": f"Bearer {tokens.codec.issue(customer['user_id'])}"},
        customer_orders=customer["n"],
        top_user=top["user_id"],
        address_id=address_id,
        product_id=product_id,
        oldest_admin_cursor=codec.encode(OrderCursor(False, None, None, 100, oldest["created_at"], oldest["id"])),
        oldest_customer_cursor=codec.encode(
            OrderCursor(True, customer["user_id"], None, 20, oldest_own["created_at"], oldest_own["id"])
        ),
    )


async def _follow(client: httpx.AsyncClient, headers: dict[str, str], pages: int) -> str:
    """The cursor of page ``pages + 1`` of the admin list by 100, found by following the cursors."""
    cursor = ""
    for _ in range(pages):
        response = await client.get("/admin/orders", params={"per_page": 100, "cursor": cursor}, headers=headers)
        cursor = response.json()["next_cursor"]
    return cursor


_Request = tuple[str, str, str, dict[str, Any], dict[str, str], int]


async def _requests(size: Size, client: httpx.AsyncClient) -> list[_Request]:
    """Issue 15's table for one database: (label, method, path, params or body, headers, expected status)."""
    subjects = await _subjects(size)
    admin, customer = subjects.admin, subjects.customer
    cursor_100 = await _follow(client, admin, 99)
    order: dict[str, Any] = {
        "items": [{"product_id": str(subjects.product_id), "quantity": 1}],
        "shipping_address_id": str(subjects.address_id),
    }
    top, oldest, own_oldest = str(subjects.top_user), subjects.oldest_admin_cursor, subjects.oldest_customer_cursor
    every = "/admin/orders"
    return [
        ("`GET /admin/orders?per_page=100`", "GET", every, {"per_page": 100}, admin, 200),
        ("same, page 100 (the deepest allowed)", "GET", every, {"per_page": 100, "page": 100}, admin, 200),
        ("same, page 101 (`page_too_deep`, 422)", "GET", every, {"per_page": 100, "page": 101}, admin, 422),
        ("same by cursor, first page", "GET", every, {"per_page": 100, "cursor": ""}, admin, 200),
        ("same by cursor, page 100", "GET", every, {"cursor": cursor_100}, admin, 200),
        ("same by cursor, the last page", "GET", every, {"cursor": oldest}, admin, 200),
        ("`GET /admin/orders?status=pending`", "GET", every, {"status": "pending"}, admin, 200),
        ("`GET /admin/orders?user_id=…` (the top customer)", "GET", every, {"user_id": top}, admin, 200),
        ("same, `&status=pending`", "GET", every, {"user_id": top, "status": "pending"}, admin, 200),
        (f"`GET /orders` page 1 (a customer with {subjects.customer_orders:,} orders)", "GET", "/orders", {},
         customer, 200),
        ("same, page 40", "GET", "/orders", {"page": 40}, customer, 200),
        ("same, `status=delivered`", "GET", "/orders", {"status": "delivered"}, customer, 200),
        ("same by cursor, the last page", "GET", "/orders", {"cursor": own_oldest}, customer, 200),
        ("`POST /orders` (one line)", "POST", "/orders", order, customer, 201),
        ("`GET /products`", "GET", "/products", {}, {}, 200),
        ("`GET /ready`", "GET", "/ready", {}, {}, 200),
    ]  # fmt: skip


async def _time(client: httpx.AsyncClient, request: _Request) -> float:
    label, method, path, params, headers, expected = request
    started = time.perf_counter()
    if method == "GET":
        response = await client.get(path, params=params, headers=headers)
    else:
        response = await client.post(path, json=params, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != expected:
        raise RuntimeError(f"{label}: {response.status_code} {response.text[:300]}")
    return elapsed * 1000


async def _measure(sizes: list[Size], args: argparse.Namespace) -> None:
    """Every request against every size, taking turns (10k, 1M, 10k, 1M, …): a busy moment of the machine then
    slows both columns alike instead of one. One warm-up each, then the median of ``--runs``."""
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for size in sizes:
            base = await stack.enter_async_context(_api(size.url, args.redis_url))
            clients.append(await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=60)))
        plans = [await _requests(size, client) for size, client in zip(sizes, clients, strict=True)]
        for row in range(len(plans[0])):
            samples: list[list[float]] = [[] for _ in sizes]
            for run in range(args.runs + 1):
                for index, client in enumerate(clients):
                    elapsed = await _time(client, plans[index][row])
                    if run:  # the first is a warm-up
                        samples[index].append(elapsed)
            for size, plan, times in zip(sizes, plans, samples, strict=True):
                size.labels.append(plan[row][0])
                size.timings.append(statistics.median(times))


def _table(sizes: list[Size]) -> str:
    header = " | ".join(f"{size.orders:,} orders" for size in sizes)
    growth = sizes[-1].orders // sizes[0].orders
    lines = [f"| request | {header} | {growth}x data |", "| --- |" + " --- |" * (len(sizes) + 1)]
    for row, label in enumerate(sizes[-1].labels):
        values = [size.timings[row] for size in sizes]
        cells = " | ".join(f"{value:.1f} ms" for value in values)
        lines.append(f"| {label} | {cells} | {values[-1] / values[0]:.2f}x |")
    return "\n".join(lines)


def _reuse(values: list[str]) -> dict[int, str]:
    pairs = (value.split("=", 1) for value in values)
    return {int(orders.replace("_", "")): url for orders, url in pairs}


async def main(args: argparse.Namespace) -> None:
    sizes: list[Size] = []
    try:
        for orders in args.sizes:
            sizes.append(await _prepare(orders, args.server_url, args))
        load = os.getloadavg()[0]
        await _measure(sizes, args)
        print(f"\none request at a time, median of {args.runs}, one API process per size; load average {load:.1f}\n")
        print(_table(sizes))
    finally:
        for size in sizes:
            if size.created and not args.keep:
                await _admin(args.server_url, f'DROP DATABASE IF EXISTS "{make_url(size.url).database}" WITH (FORCE)')
            elif size.created:
                print(f"kept {size.url}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--sizes", type=lambda text: [int(n) for n in text.split(",")], default=[10_000, 1_000_000])
    parser.add_argument("--reuse", nargs="*", default=[], help="SIZE=DATABASE_URL of an already seeded database")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the databases this run created")
    arguments = parser.parse_args()
    arguments.reuse = _reuse(arguments.reuse)
    asyncio.run(main(arguments))
