"""Concurrency promises, with real commits on separate pooled connections."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.catalog.models import Product
from app.domain.orders.models import Order, OrderItem
from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker


async def test_forty_concurrent_orders_for_ten_units_sell_exactly_ten(
    committed_client: httpx.AsyncClient,
    committed_shopper: Shopper,
    committed_products: ProductMaker,
    committed_session: AsyncSession,
) -> None:
    product = await committed_products(stock=10)

    responses = await asyncio.gather(*(place(committed_client, committed_shopper, (product, 1)) for _ in range(40)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 10
    assert statuses.count(422) == 30
    assert {r.json()["code"] for r in responses if r.status_code == 422} == {"insufficient_stock"}
    assert await committed_session.scalar(select(Product.stock).where(Product.id == product.id)) == 0
    sold = await committed_session.scalar(
        select(func.coalesce(func.sum(OrderItem.quantity), 0)).where(OrderItem.product_id == product.id)
    )
    assert sold == 10


async def test_overlapping_multi_line_orders_neither_deadlock_nor_oversell(
    committed_client: httpx.AsyncClient,
    committed_shopper: Shopper,
    committed_products: ProductMaker,
    committed_session: AsyncSession,
) -> None:
    a, b, c = await committed_products.batch(3, stock=15)
    # Opposite line orders: a naive lock order would deadlock here.
    shapes = [((a, 1), (b, 1), (c, 1)), ((c, 1), (b, 1), (a, 1)), ((b, 2), (a, 1))]

    responses = await asyncio.gather(*(place(committed_client, committed_shopper, *shapes[i % 3]) for i in range(30)))

    assert {r.status_code for r in responses} <= {201, 422}
    for product in (a, b, c):
        stock = await committed_session.scalar(select(Product.stock).where(Product.id == product.id))
        sold = await committed_session.scalar(
            select(func.coalesce(func.sum(OrderItem.quantity), 0)).where(OrderItem.product_id == product.id)
        )
        assert stock is not None
        assert sold is not None
        assert stock >= 0
        assert stock + sold == 15


async def test_concurrent_cancel_and_status_change_leave_a_consistent_order(
    committed_client: httpx.AsyncClient,
    committed_shopper: Shopper,
    committed_staff_headers: dict[str, str],
    committed_products: ProductMaker,
    committed_session: AsyncSession,
) -> None:
    for _ in range(5):
        product = await committed_products(stock=3)
        order_id = (await place(committed_client, committed_shopper, (product, 2))).json()["id"]

        cancel, pay = await asyncio.gather(
            committed_client.post(f"/orders/{order_id}/cancel", headers=committed_shopper.headers),
            committed_client.patch(
                f"/orders/{order_id}/status", json={"status": "shipped"}, headers=committed_staff_headers
            ),
        )

        status = await committed_session.scalar(select(Order.status).where(Order.id == uuid.UUID(order_id)))
        stock = await committed_session.scalar(select(Product.stock).where(Product.id == product.id))
        assert cancel.status_code == 200
        assert pay.status_code == 409  # pending → shipped is never legal, before or after the cancel
        assert status == "cancelled"
        assert stock == 3


async def test_concurrent_paid_and_cancel_apply_in_some_order_and_return_stock_once(
    committed_client: httpx.AsyncClient,
    committed_shopper: Shopper,
    committed_staff_headers: dict[str, str],
    committed_products: ProductMaker,
    committed_session: AsyncSession,
) -> None:
    outcomes = set()
    for _ in range(8):
        product = await committed_products(stock=3)
        order_id = (await place(committed_client, committed_shopper, (product, 2))).json()["id"]

        cancel, pay = await asyncio.gather(
            committed_client.post(f"/orders/{order_id}/cancel", headers=committed_shopper.headers),
            committed_client.patch(
                f"/orders/{order_id}/status", json={"status": "paid"}, headers=committed_staff_headers
            ),
        )

        status = await committed_session.scalar(select(Order.status).where(Order.id == uuid.UUID(order_id)))
        stock = await committed_session.scalar(select(Product.stock).where(Product.id == product.id))
        # Either order of the two is legal (pending→paid→cancelled, or pending→cancelled then paid refused).
        assert cancel.status_code == 200
        assert pay.status_code in {200, 409}
        assert status == "cancelled"
        assert stock == 3
        outcomes.add(pay.status_code)


async def test_concurrent_repeats_of_one_idempotency_key_create_one_order(
    committed_client: httpx.AsyncClient,
    committed_shopper: Shopper,
    committed_products: ProductMaker,
    committed_session: AsyncSession,
) -> None:
    product = await committed_products(stock=100)
    key = {"Idempotency-Key": f"burst-{uuid.uuid4()}"}

    responses = await asyncio.gather(
        *(place(committed_client, committed_shopper, (product, 1), headers=key) for _ in range(12))
    )

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 11
    assert await committed_session.scalar(select(func.count()).select_from(Order)) == 1
    assert await committed_session.scalar(select(Product.stock).where(Product.id == product.id)) == 99
