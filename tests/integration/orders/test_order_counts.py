"""``total`` is exact and never counted: ``order_counts`` follows every write to ``orders``, whoever makes it.

The counts are kept by triggers in the database, so every writer gets them: the first test goes through the app
(its direct asyncpg pool, as in production), the last ones drive the service on a pool of their own.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.cursors import CursorCodec
from app.core.pagination import PageParams
from app.db.prepared import DirectPool
from app.domain.orders.schemas import OrderCreate, OrderLine
from app.domain.orders.services import OrderService
from app.domain.orders.state_machine import OrderStatus
from app.testing.seed import Seeder, SeedOptions
from tests.integration.orders.conftest import Shop, Shopper, place
from tests.support import ProductMaker

_RECOUNT = "SELECT user_id, status, count(*) FROM orders GROUP BY user_id, status"
_KEPT = "SELECT user_id, status, orders FROM order_counts WHERE orders <> 0"


async def _kept_and_recounted(conn: AsyncConnection | AsyncSession) -> tuple[set[Any], set[Any]]:
    kept = {tuple(row) for row in (await conn.execute(text(_KEPT))).all()}
    recounted = {tuple(row) for row in (await conn.execute(text(_RECOUNT))).all()}
    return kept, recounted


async def test_totals_follow_placements_cancellations_and_status_changes(shop: Shop, db: AsyncSession) -> None:
    product = await shop.products(stock=100)
    mine = [await shop.order_id(shop.shopper, (product, 1)) for _ in range(4)]
    await place(shop.client, shop.other, (product, 1))
    await shop.client.post(f"/orders/{mine[0]}/cancel", headers=shop.shopper.headers)
    await shop.client.patch(f"/orders/{mine[1]}/status", json={"status": "paid"}, headers=shop.staff)

    def total(path: str, headers: dict[str, str], **params: str) -> Any:
        return shop.client.get(path, params=params, headers=headers)

    assert (await total("/orders", shop.shopper.headers)).json()["total"] == 4
    assert (await total("/orders", shop.shopper.headers, status="pending")).json()["total"] == 2
    assert (await total("/admin/orders", shop.staff)).json()["total"] == 5
    assert (await total("/admin/orders", shop.staff, status="pending")).json()["total"] == 3
    assert (await total("/admin/orders", shop.staff, status="cancelled")).json()["total"] == 1
    assert (await total("/admin/orders", shop.staff, user_id=str(shop.shopper.user.id), status="paid")).json()[
        "total"
    ] == 1
    kept, recounted = await _kept_and_recounted(db)
    assert kept == recounted


async def test_a_page_past_the_end_still_reports_the_exact_total(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=10)
    for _ in range(3):
        await place(client, shopper, (product, 1))

    page = (await client.get("/orders", params={"page": 5, "per_page": 2}, headers=shopper.headers)).json()

    assert (page["items"], page["total"], page["pages"]) == ([], 3, 2)


async def test_seeded_orders_are_counted_too(db_connection: AsyncConnection) -> None:
    await Seeder(SeedOptions(users=5, products=10, orders=150, seed=3, batch_size=40)).run(db_connection)

    kept, recounted = await _kept_and_recounted(db_connection)

    assert kept == recounted
    assert sum(n for *_, n in kept) == 150


async def test_deleting_orders_uncounts_them(db_connection: AsyncConnection) -> None:
    await Seeder(SeedOptions(users=3, products=5, orders=30, seed=4)).run(db_connection)
    await db_connection.execute(text("DELETE FROM order_events"))
    await db_connection.execute(text("DELETE FROM idempotency_keys"))
    await db_connection.execute(text("DELETE FROM order_items"))

    await db_connection.execute(text("DELETE FROM orders WHERE status = 'delivered'"))

    kept, recounted = await _kept_and_recounted(db_connection)
    assert kept == recounted


# --- the production path: the direct asyncpg pool, real commits ---------------------------------------------------


@pytest.fixture
async def direct_orders(
    database_url: str, settings: Settings, engine: AsyncEngine, committed_db: None
) -> AsyncIterator[OrderService]:
    pool = DirectPool(database_url, size=4, pool_mode=settings.db_pool_mode)
    await pool.open()
    maker = async_sessionmaker(engine, expire_on_commit=False)
    yield OrderService(session=maker, direct=pool, cursors=CursorCodec("k" * 32))
    await pool.close()


async def test_on_the_direct_pool_concurrent_writes_keep_the_counts_exact(
    direct_orders: OrderService,
    engine: AsyncEngine,
    committed_shopper: Shopper,
    committed_products: ProductMaker,
) -> None:
    products = await committed_products.batch(3, stock=1000)
    user_id: uuid.UUID = committed_shopper.user.id
    body = OrderCreate(
        items=[OrderLine(product_id=p.id, quantity=1) for p in products],
        shipping_address_id=committed_shopper.address.id,
    )

    placed = await asyncio.gather(*(direct_orders.place_order(user_id, body, None) for _ in range(12)))
    ids = [uuid.UUID(json.loads(p.body)["id"]) for p in placed]
    await asyncio.gather(
        *(direct_orders.change_status(i, OrderStatus.PAID) for i in ids[:4]),
        *(direct_orders.cancel(user_id, i) for i in ids[4:7]),
    )

    page = await direct_orders.list_orders(PageParams(1, 5), user_id=user_id, status=OrderStatus.PENDING)
    async with engine.connect() as conn:
        kept, recounted = await _kept_and_recounted(conn)
    assert page.total == 5
    assert kept == recounted == {(user_id, "paid", 4), (user_id, "cancelled", 3), (user_id, "pending", 5)}


async def test_on_the_direct_pool_cursors_visit_every_order_once(
    direct_orders: OrderService, committed_shopper: Shopper, committed_products: ProductMaker
) -> None:
    product = await committed_products(stock=100)
    user_id: uuid.UUID = committed_shopper.user.id
    body = OrderCreate(
        items=[OrderLine(product_id=product.id, quantity=1)], shipping_address_id=committed_shopper.address.id
    )
    for _ in range(7):
        await direct_orders.place_order(user_id, body, None)

    seen: list[uuid.UUID] = []
    cursor: str | None = ""
    while cursor is not None:
        page = await direct_orders.browse_orders(cursor, 3, own=True, user_id=user_id)
        seen.extend(order.id for order in page.items)
        cursor = page.next_cursor

    listed = await direct_orders.list_orders(PageParams(1, 20), user_id=user_id)
    assert seen == [order.id for order in listed.items]
    assert len(seen) == listed.total == 7
