"""Cancelling and staff status changes: the status table, stock returned exactly once, events recorded."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.catalog.models import Product
from app.domain.orders.models import OrderEvent
from tests.integration.orders.conftest import Shop, Shopper, place
from tests.support import ProductMaker


async def _stock(db: AsyncSession, product: Product) -> int:
    await db.refresh(product)
    return product.stock


async def _events(db: AsyncSession, order_id: str) -> int:
    query = select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == uuid.UUID(order_id))
    return await db.scalar(query) or 0


async def test_owner_cancels_a_pending_order_and_gets_the_stock_back(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(stock=5)
    order_id = (await place(client, shopper, (product, 3))).json()["id"]

    response = await client.post(f"/orders/{order_id}/cancel", headers=shopper.headers)

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert await _stock(db, product) == 5


async def test_owner_cancels_a_paid_order(
    client: httpx.AsyncClient, shopper: Shopper, staff_headers: dict[str, str], make_product: ProductMaker
) -> None:
    product = await make_product(stock=5)
    order_id = (await place(client, shopper, (product, 1))).json()["id"]
    await client.patch(f"/orders/{order_id}/status", json={"status": "paid"}, headers=staff_headers)

    response = await client.post(f"/orders/{order_id}/cancel", headers=shopper.headers)

    assert response.json()["status"] == "cancelled"


async def test_a_shipped_order_cannot_be_cancelled(
    client: httpx.AsyncClient,
    shopper: Shopper,
    staff_headers: dict[str, str],
    make_product: ProductMaker,
    db: AsyncSession,
) -> None:
    product = await make_product(stock=5)
    order_id = (await place(client, shopper, (product, 2))).json()["id"]
    for status in ("paid", "shipped"):
        await client.patch(f"/orders/{order_id}/status", json={"status": status}, headers=staff_headers)

    response = await client.post(f"/orders/{order_id}/cancel", headers=shopper.headers)

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert await _stock(db, product) == 3
    assert await _events(db, order_id) == 3  # created, paid, shipped — the refusal recorded nothing


async def test_cancelling_twice_returns_stock_once(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(stock=5)
    order_id = (await place(client, shopper, (product, 2))).json()["id"]
    await client.post(f"/orders/{order_id}/cancel", headers=shopper.headers)

    again = await client.post(f"/orders/{order_id}/cancel", headers=shopper.headers)

    assert again.status_code == 409
    assert await _stock(db, product) == 5


async def test_only_the_owner_can_cancel(shop: Shop) -> None:
    product = await shop.products(stock=5)
    order_id = await shop.order_id(shop.shopper, (product, 1))

    assert (await shop.client.post(f"/orders/{order_id}/cancel", headers=shop.other.headers)).status_code == 404
    assert (await shop.client.post(f"/orders/{order_id}/cancel", headers=shop.staff)).status_code == 404
    assert (await shop.client.post(f"/orders/{uuid.uuid4()}/cancel", headers=shop.shopper.headers)).status_code == 404


async def test_staff_walk_an_order_to_delivered(
    client: httpx.AsyncClient,
    shopper: Shopper,
    staff_headers: dict[str, str],
    make_product: ProductMaker,
    db: AsyncSession,
) -> None:
    product = await make_product(stock=5)
    order_id = (await place(client, shopper, (product, 1))).json()["id"]

    statuses = []
    for status in ("paid", "shipped", "delivered"):
        response = await client.patch(f"/orders/{order_id}/status", json={"status": status}, headers=staff_headers)
        statuses.append(response.json()["status"])

    assert statuses == ["paid", "shipped", "delivered"]
    assert await _events(db, order_id) == 4
    final = await client.patch(f"/orders/{order_id}/status", json={"status": "cancelled"}, headers=staff_headers)
    assert final.status_code == 409


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ((), "shipped"),
        ((), "delivered"),
        ((), "pending"),
        (("paid",), "pending"),
        (("paid",), "delivered"),
        (("paid", "shipped"), "cancelled"),
        (("paid", "shipped"), "paid"),
        (("cancelled",), "paid"),
    ],
)
async def test_illegal_transitions_are_409(
    client: httpx.AsyncClient,
    shopper: Shopper,
    staff_headers: dict[str, str],
    make_product: ProductMaker,
    path: tuple[str, ...],
    target: str,
) -> None:
    product = await make_product(stock=5)
    order_id = (await place(client, shopper, (product, 1))).json()["id"]
    for status in path:
        await client.patch(f"/orders/{order_id}/status", json={"status": status}, headers=staff_headers)

    response = await client.patch(f"/orders/{order_id}/status", json={"status": target}, headers=staff_headers)

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"


async def test_staff_cancel_returns_stock(
    client: httpx.AsyncClient,
    shopper: Shopper,
    staff_headers: dict[str, str],
    make_product: ProductMaker,
    db: AsyncSession,
) -> None:
    product = await make_product(stock=5)
    order_id = (await place(client, shopper, (product, 4))).json()["id"]

    await client.patch(f"/orders/{order_id}/status", json={"status": "cancelled"}, headers=staff_headers)

    assert await _stock(db, product) == 5


async def test_unknown_status_is_422(
    client: httpx.AsyncClient, shopper: Shopper, staff_headers: dict[str, str], make_product: ProductMaker
) -> None:
    product = await make_product(stock=5)
    order_id = (await place(client, shopper, (product, 1))).json()["id"]

    response = await client.patch(f"/orders/{order_id}/status", json={"status": "lost"}, headers=staff_headers)

    assert response.status_code == 422


async def test_customers_cannot_change_status(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=5)
    order_id = (await place(client, shopper, (product, 1))).json()["id"]

    response = await client.patch(f"/orders/{order_id}/status", json={"status": "paid"}, headers=shopper.headers)

    assert response.status_code == 403
    assert response.json()["detail"] == "Permission required: orders:manage"


async def test_status_change_of_missing_order_is_404(client: httpx.AsyncClient, staff_headers: dict[str, str]) -> None:
    response = await client.patch(f"/orders/{uuid.uuid4()}/status", json={"status": "paid"}, headers=staff_headers)

    assert response.status_code == 404
