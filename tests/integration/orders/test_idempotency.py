"""Idempotency-Key on POST /orders: replay, reuse with another body, failures store nothing, 24 h expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.orders.models import IdempotencyKey, Order
from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker


async def _orders(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(Order)) or 0


async def test_repeat_with_same_key_and_body_replays_the_original(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(stock=10)
    key = {"Idempotency-Key": "checkout-1"}
    first = await place(client, shopper, (product, 2), headers=key)

    second = await place(client, shopper, (product, 2), headers=key)

    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert await _orders(db) == 1
    await db.refresh(product)
    assert product.stock == 8


async def test_replay_returns_the_original_even_after_the_order_changed(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=10)
    key = {"Idempotency-Key": "checkout-2"}
    first = (await place(client, shopper, (product, 1), headers=key)).json()
    await client.post(f"/orders/{first['id']}/cancel", headers=shopper.headers)

    replay = await place(client, shopper, (product, 1), headers=key)

    assert replay.json() == first


async def test_same_key_with_another_body_is_409(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(stock=10)
    key = {"Idempotency-Key": "checkout-3"}
    await place(client, shopper, (product, 1), headers=key)

    response = await place(client, shopper, (product, 2), headers=key)

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert await _orders(db) == 1


async def test_failed_request_stores_nothing_so_the_key_can_be_retried(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(stock=1)
    key = {"Idempotency-Key": "checkout-4"}
    failed = await place(client, shopper, (product, 2), headers=key)
    assert failed.status_code == 422
    assert await db.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    product.stock = 5
    await db.commit()

    retried = await place(client, shopper, (product, 2), headers=key)

    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers


async def test_keys_belong_to_one_user(
    client: httpx.AsyncClient, shopper: Shopper, other_shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(stock=10)
    key = {"Idempotency-Key": "shared-key"}

    mine = await place(client, shopper, (product, 1), headers=key)
    theirs = await place(client, other_shopper, (product, 1), headers=key)

    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers
    assert await _orders(db) == 2


async def test_an_expired_key_starts_afresh(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(stock=10)
    key = {"Idempotency-Key": "yesterday"}
    first = (await place(client, shopper, (product, 1), headers=key)).json()
    past = datetime.now(UTC) - timedelta(hours=25)
    await db.execute(update(IdempotencyKey).values(created_at=past, expires_at=past + timedelta(hours=24)))
    await db.commit()

    again = await place(client, shopper, (product, 1), headers=key)

    assert again.status_code == 201
    assert again.json()["id"] != first["id"]


async def test_key_longer_than_255_is_422(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=10)

    response = await place(client, shopper, (product, 1), headers={"Idempotency-Key": "k" * 256})

    assert response.status_code == 422
