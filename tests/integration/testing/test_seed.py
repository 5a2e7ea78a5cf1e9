"""The seeder: data indistinguishable from the API's, consistent stock and totals, history events, reproducible.

Each test seeds on its own connection (``db_connection``): a seed on a connection outside a transaction commits
every batch (as the seed command does), one inside a transaction makes every batch a savepoint; the tables are
emptied after each test.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from argon2 import PasswordHasher
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.components import components_of
from app.domain.addresses.schemas import AddressRead
from app.domain.orders.schemas import MAX_LINES, MAX_QUANTITY
from app.domain.orders.services import OrderService
from app.domain.orders.state_machine import OrderStatus
from app.testing.factories import AddressFactory, ProductFactory, build_order_graph, create_user
from app.testing.seed import SEED_PASSWORD, Seeder, SeedOptions, _Customer, _OrderBuilder
from app.testing.values import FakeValues

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
#: Seeded "at" AS_OF (its clock): the whole history, payment timeouts included, lies before it.
SMALL = SeedOptions(users=20, products=30, orders=200, seed=7, as_of=AS_OF, batch_size=64, clock=AS_OF)

CHAINS = {
    "pending": [["pending"]],
    "paid": [["pending", "paid"]],
    "shipped": [["pending", "paid", "shipped"]],
    "delivered": [["pending", "paid", "shipped", "delivered"]],
    "cancelled": [["pending", "cancelled"], ["pending", "paid", "cancelled"]],
}


async def seed(conn: AsyncConnection, **changes: Any) -> Seeder:
    seeder = Seeder(dataclasses.replace(SMALL, **changes))
    await seeder.run(conn)
    return seeder


async def rows(conn: AsyncConnection, sql: str, **params: Any) -> list[Any]:
    return list((await conn.execute(text(sql), params)).all())


async def count(conn: AsyncConnection, table: str) -> int:
    return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


# --- what is created ---------------------------------------------------------------------------------------------


async def test_seed_creates_what_was_asked_and_reports_it(db_connection: AsyncConnection) -> None:
    seeder = await seed(db_connection)

    report = seeder.report
    assert (report.users, report.products, report.orders) == (20, 30, 200)
    counted = {t: await count(db_connection, t) for t in ("users", "user_roles", "addresses", "order_items")}
    assert counted == {"users": 20, "user_roles": 20, "addresses": report.addresses, "order_items": report.items}
    assert 20 <= report.addresses <= 60
    assert report.events == await count(db_connection, "order_events")
    assert report.rows == 2 * 20 + report.addresses + 30 + 200 + report.items + report.events


async def test_seeded_users_are_customers_sharing_one_argon2_hash_of_the_documented_password(
    db_connection: AsyncConnection,
) -> None:
    await seed(db_connection)

    users = await rows(
        db_connection,
        "SELECT u.email, u.password_hash, u.is_active, array_agg(r.role_name) AS roles "
        "FROM users u JOIN user_roles r ON r.user_id = u.id GROUP BY u.id",
    )
    assert {tuple(user.roles) for user in users} == {("customer",)}
    assert all(user.is_active and user.email == user.email.lower() for user in users)
    assert len({user.password_hash for user in users}) == 1
    assert PasswordHasher().verify(users[0].password_hash, SEED_PASSWORD)


async def test_orders_total_their_lines_which_snapshot_the_products_and_follow_the_order_rules(
    db_connection: AsyncConnection,
) -> None:
    await seed(db_connection)

    assert not await rows(
        db_connection,
        "SELECT o.id FROM orders o JOIN order_items i ON i.order_id = o.id "
        "GROUP BY o.id HAVING o.total_cents <> sum(i.price_cents * i.quantity)",
    )
    assert not await rows(
        db_connection,
        "SELECT i.id FROM order_items i JOIN products p ON p.id = i.product_id "
        "WHERE i.product_name <> p.name OR i.price_cents <> p.price_cents",
    )
    lines = await rows(
        db_connection,
        "SELECT o.id, count(i.id) AS lines, min(i.quantity) AS least, max(i.quantity) AS most "
        "FROM orders o LEFT JOIN order_items i ON i.order_id = o.id GROUP BY o.id",
    )
    assert len(lines) == 200
    assert all(1 <= order.lines <= MAX_LINES and 1 <= order.least <= order.most <= MAX_QUANTITY for order in lines)
    assert 1.5 <= sum(order.lines for order in lines) / len(lines) <= 3.5  # about 2.5 lines per order


async def test_each_order_ships_to_an_address_of_its_customer_as_the_api_snapshots_it(
    db_connection: AsyncConnection,
) -> None:
    await seed(db_connection)

    columns = ", ".join(AddressRead.__struct_fields__)
    addresses = {
        row.id: (row.user_id, msgspec.to_builtins(AddressRead(*row[2:])))
        for row in await rows(db_connection, f"SELECT id, user_id, {columns} FROM addresses")
    }
    orders = await rows(db_connection, "SELECT user_id, shipping_address FROM orders")
    for order in orders:
        owner, snapshot = addresses[uuid.UUID(order.shipping_address["id"])]
        assert owner == order.user_id
        assert order.shipping_address == snapshot


async def _stock_and_sold(db_connection: AsyncConnection) -> list[Any]:
    """Each product's id, stock left and units sold in orders not cancelled."""
    return await rows(
        db_connection,
        "SELECT p.id, p.stock, coalesce(sum(i.quantity) FILTER (WHERE o.status <> 'cancelled'), 0) AS sold "
        "FROM products p LEFT JOIN order_items i ON i.product_id = p.id LEFT JOIN orders o ON o.id = i.order_id "
        "GROUP BY p.id",
    )


async def test_stock_left_plus_units_sold_is_the_initial_stock(db_connection: AsyncConnection) -> None:
    seeder = await seed(db_connection)

    products = await _stock_and_sold(db_connection)
    assert {p.id: p.stock + p.sold for p in products} == seeder.initial_stock
    assert all(p.stock >= 0 for p in products)
    assert any(p.sold > 0 for p in products)


async def test_every_order_has_the_event_history_of_its_status(db_connection: AsyncConnection) -> None:
    await seed(db_connection)

    orders = {row.id: row for row in await rows(db_connection, "SELECT id, status, created_at, updated_at FROM orders")}
    events: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for event in await rows(db_connection, "SELECT * FROM order_events ORDER BY event_id"):
        events[event.order_id].append(event)
    assert events.keys() == orders.keys()
    for order_id, history in events.items():
        order = orders[order_id]
        assert [e.status for e in history] in CHAINS[order.status]
        assert [e.type for e in history] == ["order_created"] + ["order_status_changed"] * (len(history) - 1)
        assert [e.previous_status for e in history] == [None] + [e.status for e in history[:-1]]
        assert [e.at for e in history] == sorted(e.at for e in history)
        assert (history[0].at, history[-1].at) == (order.created_at, order.updated_at)
        assert order.created_at <= order.updated_at <= AS_OF
    assert {order.status for order in orders.values()} == set(CHAINS)  # 200 orders show every status


async def test_pending_orders_are_younger_than_the_payment_ttl_at_as_of(db_connection: AsyncConnection) -> None:
    await seed(db_connection, payment_ttl=600)

    ages = await rows(
        db_connection,
        "SELECT CAST(:as_of AS timestamptz) - created_at AS age FROM orders WHERE status = 'pending'",
        as_of=AS_OF,
    )
    assert ages
    assert all(timedelta(0) <= row.age < timedelta(seconds=600) for row in ages)


async def test_orders_past_their_payment_deadline_at_seeding_are_seeded_as_timed_out(
    db_connection: AsyncConnection,
) -> None:
    clock = AS_OF + timedelta(days=1)  # seeded a day after the history ends: every pending order's deadline passed
    seeder = await seed(db_connection, payment_ttl=600, clock=clock)

    assert not await rows(db_connection, "SELECT id FROM orders WHERE status = 'pending'")
    timed_out = await rows(
        db_connection,
        "SELECT o.created_at, o.updated_at, e.at, e.previous_status, e.dispatched_at, e.emailed_at "
        "FROM orders o JOIN order_events e ON e.order_id = o.id WHERE e.reason = 'payment_timeout'",
    )
    assert timed_out
    for row in timed_out:
        assert row.previous_status == "pending"
        assert row.at == row.updated_at == row.created_at + timedelta(seconds=600) <= clock
        assert row.dispatched_at is not None  # history: published and emailed already, so nobody is emailed
        assert row.emailed_at is not None
    products = await _stock_and_sold(db_connection)
    assert {p.id: p.stock + p.sold for p in products} == seeder.initial_stock


async def test_the_first_payment_sweep_after_seeding_cancels_nothing(
    db_connection: AsyncConnection, db: AsyncSession, app: Litestar
) -> None:
    await seed(db_connection, payment_ttl=600, clock=datetime.now(UTC))

    sweep = OrderService(db, direct=components_of(app).direct)
    batch = await sweep.expire_unpaid(placed_before=datetime.now(UTC) - timedelta(seconds=600))

    assert batch.count == 0


async def test_seeded_events_are_delivered_history_numbered_right_after_the_last_event(
    db_connection: AsyncConnection, db: AsyncSession
) -> None:
    customer = await create_user(db)
    address = AddressFactory.build(user_id=customer.id)
    product = ProductFactory.build()
    db.add_all([address, product])
    await db.flush()
    earlier = build_order_graph(customer.id, address, [(product, 1)])
    db.add_all(earlier.models())
    await db.commit()
    await db_connection.execute(text("UPDATE order_events SET event_id = 41, dispatched_at = now()"))

    seeder = await seed(db_connection)

    seeded = await rows(db_connection, "SELECT * FROM order_events WHERE event_id > 41 ORDER BY event_id")
    assert [e.event_id for e in seeded] == list(range(42, 42 + seeder.report.events))
    assert (seeder.report.first_event_id, seeder.report.last_event_id) == (42, 41 + seeder.report.events)
    assert all(e.dispatched_at is not None and e.emailed_at is not None for e in seeded)


# --- reproducible, repeatable --------------------------------------------------------------------------

_DIGEST = """
SELECT md5(string_agg(line, '|' ORDER BY line)) FROM (
    SELECT t::text AS line FROM users t UNION ALL SELECT t::text FROM user_roles t
    UNION ALL SELECT t::text FROM addresses t UNION ALL SELECT t::text FROM products t
    UNION ALL SELECT t::text FROM orders t UNION ALL SELECT t::text FROM order_items t
    UNION ALL SELECT (event_id, type, order_id, user_id, status, previous_status, at, dispatched_at, emailed_at)::text
    FROM order_events
) AS everything
"""


async def _digest_of_a_run(conn: AsyncConnection, **changes: Any) -> str:
    """Seed into a savepoint, digest every row (``order_events.id`` aside: PostgreSQL numbers it), roll back."""
    savepoint = await conn.begin_nested()
    try:
        await seed(conn, **changes)
        return str(await conn.scalar(text(_DIGEST)))
    finally:
        await savepoint.rollback()


async def test_the_same_seed_on_the_same_database_gives_the_same_rows(db_connection: AsyncConnection) -> None:
    first = await _digest_of_a_run(db_connection)
    second = await _digest_of_a_run(db_connection)
    other_seed = await _digest_of_a_run(db_connection, seed=8)
    other_day = await _digest_of_a_run(db_connection, as_of=datetime(2026, 11, 2, tzinfo=UTC))

    assert first == second
    assert len({first, other_seed, other_day}) == 3


async def test_seeding_again_adds_different_rows(db_connection: AsyncConnection) -> None:
    await seed(db_connection)
    emails = set(await db_connection.scalars(text("SELECT email FROM users")))

    await seed(db_connection)  # same seed; unique emails, skus and ids would make this fail on a collision

    assert await count(db_connection, "users") == 40
    assert await count(db_connection, "orders") == 400
    assert len(set(await db_connection.scalars(text("SELECT email FROM users"))) - emails) == 20


def test_orders_need_products_and_customers() -> None:
    with pytest.raises(ValueError, match="orders need"):
        SeedOptions(products=5, orders=10)
    with pytest.raises(ValueError, match="orders need"):
        SeedOptions(users=5, orders=10)


# --- seen through the API ---------------------------------------------------------------------------------------


async def test_seeded_users_log_in_with_the_documented_password_and_see_their_orders(
    client: httpx.AsyncClient, db_connection: AsyncConnection
) -> None:
    await seed(db_connection)
    busiest = (
        await rows(
            db_connection,
            "SELECT u.email, u.id, count(o.id) AS orders FROM users u JOIN orders o ON o.user_id = u.id "
            "GROUP BY u.id ORDER BY count(o.id) DESC LIMIT 1",
        )
    )[0]

    login = await client.post("/auth/login", json={"email": busiest.email, "password": SEED_PASSWORD})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    page = (await client.get("/orders", params={"per_page": 100}, headers=headers)).json()
    assert page["total"] == busiest.orders
    newest = page["items"][0]
    assert newest["total_cents"] == sum(line["line_total_cents"] for line in newest["items"])
    timeline = (await client.get(f"/orders/{newest['id']}/events", headers=headers)).json()
    assert [event["status"] for event in timeline] in CHAINS[newest["status"]]


def test_the_seeds_order_builder_makes_the_rows_build_order_graph_makes() -> None:
    """The seed builds its orders without ``build_order_graph``'s objects (for speed): same checks, draws and rows."""
    seeder = Seeder(SMALL)
    users = [uuid.uuid4() for _ in range(4)]
    customers = [_Customer(user, AS_OF, [AddressFactory.build(user_id=user) for _ in range(2)]) for user in users]
    products = [ProductFactory.build(stock=10_000) for _ in range(12)]
    weights = [float(n) for n in range(1, 13)]
    plan = seeder._plan_orders("key", customers, weights[:4], weights)
    placed = plan.chronological()

    batch = _OrderBuilder(FakeValues("ids"), plan, customers, products).batch(placed)

    values = FakeValues("ids")
    graphs = []
    for position in placed:
        customer, address, lines, *_ = plan.order(position)
        history = plan.history(position)
        graphs.append(
            build_order_graph(
                customers[customer].id,
                customers[customer].addresses[address],
                [(products[index], quantity) for index, quantity in lines],
                status=history[-1].status,
                history=history,
                values=values,
            )
        )
    events = sorted((event for graph in graphs for event in graph.events), key=lambda event: event.at)
    assert batch.orders == [
        (*graph.order[:4], msgspec.json.encode(graph.order.shipping_address).decode(), *graph.order[5:])
        for graph in graphs
    ]
    assert batch.items == [tuple(item) for graph in graphs for item in graph.items]
    assert batch.events == [(*event, event.at, event.at + timedelta(seconds=2)) for event in events]
    assert {order[2] for order in batch.orders} == {status.value for status in OrderStatus}
    placed_at = [order[5] for order in batch.orders]
    assert placed_at == sorted(placed_at)  # written in the order they were placed
