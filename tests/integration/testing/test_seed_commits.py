"""Seeding for real (committed, as the CLI and the dev command do): the live outbox, the demo data, the command.

``committed_db`` empties every table afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

import httpx
import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.config import Settings
from app.dev.demo import DEMO_USERS, ensure_demo_data, ensure_demo_users
from app.events.outbox import OutboxDispatcher
from app.testing.seed import SEED_PASSWORD, Seeder, SeedOptions, Stage
from tests.integration.orders.conftest import Shopper
from tests.support import AddressMaker, AuthHeaders, ProductMaker, UserMaker, run_litestar

OPTIONS = SeedOptions(users=5, products=8, orders=60, seed=3, as_of=datetime(2026, 11, 1, tzinfo=UTC), batch_size=16)


class EmailQueue:
    """Stands in for the SAQ queue: remembers which outbox rows the dispatcher handed over for emailing."""

    def __init__(self) -> None:
        self.row_ids: list[int] = []

    async def __call__(self, row_ids: Sequence[int]) -> None:
        self.row_ids.extend(row_ids)


@pytest.fixture
async def live_shop(
    engine: AsyncEngine, committed_db: None, auth_headers: AuthHeaders
) -> AsyncIterator[tuple[Shopper, object]]:
    """A committed customer with an address, and a product with plenty of stock."""
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        user = await UserMaker(session)()
        shopper = Shopper(user, auth_headers(user), await AddressMaker(session)(user))
        yield shopper, await ProductMaker(session)(stock=1_000)


class Event(NamedTuple):
    row_id: int
    event_id: int | None
    at: datetime
    dispatched_at: datetime | None


async def _events(engine: AsyncEngine) -> list[Event]:
    async with engine.connect() as connection:
        result = await connection.execute(text("SELECT id, event_id, at, dispatched_at FROM order_events ORDER BY id"))
        return [Event(*row) for row in result]


async def _dispatch_everything(dispatcher: OutboxDispatcher, engine: AsyncEngine) -> list[Event]:
    """Dispatch until every event is out: by this dispatcher, or by another one a test app may be running."""
    for _ in range(100):
        await dispatcher.dispatch()
        events = await _events(engine)
        if all(event.dispatched_at is not None for event in events):
            return events
        await asyncio.sleep(0.05)
    raise AssertionError("events stayed undispatched")


async def test_the_live_dispatcher_publishes_no_seeded_event_and_numbers_new_ones_after_them(
    engine: AsyncEngine, redis: Redis, committed_client: httpx.AsyncClient, live_shop: tuple[Shopper, object]
) -> None:
    shopper, product = live_shop
    emails = EmailQueue()
    async with engine.connect() as connection:
        report = await Seeder(OPTIONS).run(connection)
    placed = await committed_client.post("/orders", json=shopper.order((product, 1)), headers=shopper.headers)
    assert placed.status_code == 201, placed.text

    events = await _dispatch_everything(OutboxDispatcher(engine, redis, emails), engine)

    seeded, (api_event,) = events[:-1], events[-1:]
    assert report.last_event_id is not None
    assert api_event.event_id == report.last_event_id + 1
    # Dispatching stamps ``dispatched_at``; the seeded rows still carry the time they were recorded with.
    assert all(event.dispatched_at == event.at for event in seeded)
    assert set(emails.row_ids) <= {api_event.row_id}


async def test_seeding_while_orders_are_placed_and_dispatched_keeps_one_gapless_sequence_of_event_ids(
    engine: AsyncEngine, redis: Redis, committed_client: httpx.AsyncClient, live_shop: tuple[Shopper, object]
) -> None:
    shopper, product = live_shop
    emails = EmailQueue()
    dispatcher = OutboxDispatcher(engine, redis, emails)
    seeder = Seeder(dataclasses.replace(OPTIONS, orders=240, batch_size=8))
    seeding = asyncio.ensure_future(_seed_committed(engine, seeder))
    placed: list[str] = []
    while not seeding.done():
        response = await committed_client.post("/orders", json=shopper.order((product, 1)), headers=shopper.headers)
        assert response.status_code == 201, response.text
        placed.append(response.json()["id"])
        await dispatcher.dispatch()
    await seeding

    events = await _dispatch_everything(dispatcher, engine)

    assert sorted(event.event_id or 0 for event in events) == list(range(1, len(events) + 1))
    assert len(placed) > 1
    api_rows = {event.row_id for event in events if event.dispatched_at != event.at}
    assert len(api_rows) == len(placed)  # each API event was published once; no seeded one was
    assert set(emails.row_ids) <= api_rows


async def _seed_committed(engine: AsyncEngine, seeder: Seeder) -> None:
    async with engine.connect() as connection:
        await seeder.run(connection)


@pytest.mark.usefixtures("committed_db")
async def test_an_interrupted_run_leaves_whole_batches_and_consistent_stock(engine: AsyncEngine) -> None:
    class InterruptDuringTheThirdOrderBatch:
        """Like Ctrl-C: the run is cancelled wherever it is just after the second batch of orders committed."""

        def __init__(self) -> None:
            self.batches = 0

        def start(self, stage: Stage, total: int) -> None:
            pass

        def advance(self, stage: Stage, count: int) -> None:
            if stage == "orders":
                self.batches += 1
            if self.batches == 2:
                asyncio.get_running_loop().call_soon(run.cancel)

    seeder = Seeder(dataclasses.replace(OPTIONS, orders=100), progress=InterruptDuringTheThirdOrderBatch())
    run = asyncio.ensure_future(_seed_committed(engine, seeder))
    with pytest.raises(asyncio.CancelledError):
        await run

    async with engine.connect() as connection:
        orders, events, orphans = (await connection.execute(text(_COUNTS))).one()
        initial = dict((await connection.execute(text(_INITIAL_STOCK))).tuples().all())
    assert orders == seeder.report.orders == 2 * OPTIONS.batch_size
    assert events == seeder.report.events
    assert orphans == 0
    assert initial == seeder.initial_stock


_COUNTS = """
SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_events), (
    SELECT count(*) FROM orders o
    WHERE NOT EXISTS (SELECT FROM order_events e WHERE e.order_id = o.id)
    OR NOT EXISTS (SELECT FROM order_items i WHERE i.order_id = o.id)
)
"""
_INITIAL_STOCK = """
SELECT p.id, p.stock + coalesce(sum(i.quantity) FILTER (WHERE o.status <> 'cancelled'), 0)
FROM products p LEFT JOIN order_items i ON i.product_id = p.id LEFT JOIN orders o ON o.id = i.order_id GROUP BY p.id
"""


@pytest.mark.usefixtures("committed_db")
async def test_demo_data_is_seeded_on_the_first_start_only(alchemy: SQLAlchemyAsyncConfig, engine: AsyncEngine) -> None:
    await ensure_demo_users(alchemy)

    first = await ensure_demo_data(alchemy, payment_ttl=1800)
    second = await ensure_demo_data(alchemy, payment_ttl=1800)

    assert first is not None
    assert (first.users, first.products, first.orders, first.addresses) == (0, 25, 10, 2)
    assert second is None
    async with engine.connect() as connection:
        joined, first_order, orders = (
            await connection.execute(
                text(
                    "SELECT u.created_at, min(o.created_at), count(o.id) FROM users u "
                    "JOIN orders o ON o.user_id = u.id WHERE u.email = :email GROUP BY u.id"
                ),
                {"email": DEMO_USERS[2].email},
            )
        ).one()
    assert orders == 10
    assert joined < first_order  # the account is older than its history


@pytest.mark.usefixtures("committed_db")
async def test_the_seed_command_fills_the_database_and_says_what_it_did(settings: Settings) -> None:
    # In a process of its own, as it is used.
    arguments = "seed --users 3 --products 4 --orders 12 --seed 5 --as-of 2026-11-01 --demo-users"

    result = await run_litestar(settings, "--app", "app.main:create_app", *arguments.split(), LOG_LEVEL="WARNING")

    assert result.returncode == 0, result.stderr
    output = " ".join(result.stdout.split())  # rich wraps long lines at the terminal width
    assert "orders 12" in output
    assert f"password: {SEED_PASSWORD}" in output
    assert "--seed 5 --as-of 2026-11-01" in output
    assert all(demo.email in output for demo in DEMO_USERS)


@pytest.mark.usefixtures("committed_db")
async def test_the_seed_command_refuses_to_run_in_production(settings: Settings, engine: AsyncEngine) -> None:
    arguments = "seed --users 3 --products 4 --orders 12 --demo-users"

    result = await run_litestar(
        settings,
        "--app",
        "app.main:create_app",
        *arguments.split(),
        APP_ENV="production",
        JWT_SECRET=secrets.token_urlsafe(48),
        LOG_LEVEL="WARNING",
    )

    assert result.returncode != 0
    assert "refuses to run when APP_ENV=production" in result.stderr
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0
