"""Payment timeout at scale: N orders fall due at once; how fast one worker drains them, and how much order
placement slows down meanwhile.

Needs a migrated, empty database. It seeds customers and products (``Seeder``), inserts N ``pending`` orders placed
``ORDER_PAYMENT_TTL`` + 60 s ago (one line each), then:

1. **baseline**: ``--clients`` concurrent placers call ``OrderService.place_order`` (the ``POST /orders`` statement,
   on a direct pool, as the API runs it) for ``--baseline`` seconds;
2. **drain**: a separate process (as a worker is) runs the payment-timeout sweep (``expire_unpaid_orders``, the
   worker's code, at its pace unless ``--rate`` says otherwise) until no order is due, while the placers go on;
3. **after**: the placers go on alone as long as the baseline: the slowdown is measured against the mean of the
   rates before and after, so that the drift of a shared machine does not pass for the sweep's doing.

    uv run python -m tests.benchmarks.payment_timeout \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/orders_timeout --orders 100000

Prints the drain rate (orders cancelled per second, from the first to the last commit of the sweep) and the
placement rate before and during the drain. Not a test: timings depend on the machine. Publishing the events and
sending the emails is the outbox's work afterwards, not part of the drain measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.config import PROJECT_ROOT, Settings
from app.db.prepared import DirectPool
from app.domain.orders.schemas import OrderCreate, OrderLine
from app.domain.orders.services import OrderService
from app.events.payment_timeout import expire_unpaid_orders
from app.testing.seed import Seeder, SeedOptions

TTL = 1800

_OVERDUE = text("""
    WITH a AS (SELECT user_id, id, row_number() OVER (ORDER BY id) - 1 AS n, count(*) OVER () AS total FROM addresses),
    p AS (SELECT id, name, price_cents, row_number() OVER (ORDER BY id) - 1 AS n, count(*) OVER () AS total
          FROM products),
    o AS MATERIALIZED (SELECT gen_random_uuid() AS id, i FROM generate_series(0, :orders - 1) AS i),
    new_orders AS (
        INSERT INTO orders (id, user_id, status, total_cents, shipping_address, created_at, updated_at)
        SELECT o.id, a.user_id, 'pending', p.price_cents, jsonb_build_object('id', a.id), :placed, :placed
        FROM o JOIN a ON a.n = o.i % a.total JOIN p ON p.n = o.i % p.total
    )
    INSERT INTO order_items (id, order_id, product_id, product_name, price_cents, quantity)
    SELECT gen_random_uuid(), o.id, p.id, p.name, p.price_cents, 1 FROM o JOIN p ON p.n = o.i % p.total
""")


async def _prepare(database_url: str, orders: int) -> None:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        await Seeder(SeedOptions(users=50, products=200, seed=17, payment_ttl=TTL)).run(connection)
        async with connection.begin():
            await connection.execute(text("UPDATE products SET stock = 10000000, is_active = true"))
            placed = datetime.now(UTC) - timedelta(seconds=TTL + 60)
            await connection.execute(_OVERDUE, {"orders": orders, "placed": placed})
        async with connection.begin():
            await connection.execute(text("ANALYZE"))
    await engine.dispose()


async def _place_for(
    orders: OrderService, customers: list[tuple[uuid.UUID, uuid.UUID]], products: list[uuid.UUID], stop: asyncio.Event
) -> list[float]:
    """Place orders until ``stop``; returns when each one was placed."""
    placed: list[float] = []
    rng = random.Random()
    while not stop.is_set():
        user_id, address_id = rng.choice(customers)
        lines = [OrderLine(product_id=p, quantity=1) for p in rng.sample(products, rng.randint(1, 3))]
        await orders.place_order(user_id, OrderCreate(items=lines, shipping_address_id=address_id), None)
        placed.append(time.time())
    return placed


async def _sweep(database_url: str, rate: float) -> None:
    """The worker's side, in its own process: sweep until nothing is due; print the first and last commit times."""
    pool = DirectPool(database_url, size=4)
    await pool.open()
    service = OrderService(async_sessionmaker(), direct=pool)
    started = time.time()
    cancelled = await expire_unpaid_orders(service, ttl=TTL, rate=None if rate == 0 else rate)
    finished = time.time()
    await pool.close()
    print(json.dumps({"cancelled": cancelled, "started": started, "finished": finished}))


async def main(args: argparse.Namespace) -> None:
    print(f"preparing {args.orders:,} overdue orders…", file=sys.stderr)
    await _prepare(args.database_url, args.orders)
    engine = create_async_engine(args.database_url)
    async with engine.connect() as connection:
        customers = [tuple(row) for row in await connection.execute(text("SELECT user_id, id FROM addresses"))]
        products = list((await connection.scalars(text("SELECT id FROM products"))).all())
    await engine.dispose()
    pool = DirectPool(args.database_url, size=args.clients)
    await pool.open()
    service = OrderService(async_sessionmaker(), direct=pool)

    stop = asyncio.Event()
    placers = [asyncio.create_task(_place_for(service, customers, products, stop)) for _ in range(args.clients)]
    await asyncio.sleep(args.warmup)
    baseline_from = time.time()
    await asyncio.sleep(args.baseline)
    baseline_to = time.time()
    sweeper = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.benchmarks.payment_timeout", "--database-url", args.database_url, "--sweep",
        "--rate", str(args.rate),
        cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, _ = await asyncio.wait_for(sweeper.communicate(), timeout=args.timeout)
    after_from = time.time()
    await asyncio.sleep(args.baseline)  # and as long again after it: the machine's drift shows as before ≠ after
    after_to = time.time()
    stop.set()
    placed = sorted(t for times in await asyncio.gather(*placers) for t in times)
    await pool.close()

    result = json.loads(stdout.decode().strip().splitlines()[-1])
    drain_from, drain_to = result["started"], result["finished"]  # the sweep itself, not the process start-up
    drain_seconds = drain_to - drain_from
    before = sum(baseline_from <= t < baseline_to for t in placed) / (baseline_to - baseline_from)
    after = sum(after_from <= t < after_to for t in placed) / (after_to - after_from)
    during = sum(drain_from <= t < drain_to for t in placed) / (drain_to - drain_from)
    baseline = (before + after) / 2
    print(f"orders due at once:   {args.orders:,}")
    print(f"cancelled by sweep:   {result['cancelled']:,} in {drain_seconds:.1f} s")
    print(f"drain rate:           {result['cancelled'] / drain_seconds:,.0f} orders/s (target >= 2,000)")
    print(f"placement, before:    {before:,.0f} orders/s ({args.clients} clients, {args.baseline:.0f} s)")
    print(f"placement, draining:  {during:,.0f} orders/s (while the sweep ran)")
    print(f"placement, after:     {after:,.0f} orders/s ({args.baseline:.0f} s)")
    print(
        f"placement slowdown:   {100 * (1 - during / baseline):.1f} % of the mean of before and after (target <= 20 %)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8, help="concurrent order placers")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--baseline", type=float, default=15.0, help="seconds of placement before the drain")
    parser.add_argument("--timeout", type=float, default=600.0, help="longest the drain may take")
    parser.add_argument(
        "--rate",
        type=float,
        default=Settings().payment_expiry_rate,
        help="the sweep's pace, orders/s (0: flat out; default: the worker's)",
    )
    parser.add_argument("--sweep", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    asyncio.run(_sweep(arguments.database_url, arguments.rate) if arguments.sweep else main(arguments))
