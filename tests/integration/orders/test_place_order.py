"""POST /orders: the order's shape, snapshots, stock, and every business error."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.catalog.models import Product
from app.domain.orders.models import Order, OrderEvent
from tests.integration.orders.conftest import Shopper, place
from tests.support import AddressMaker, ProductMaker


async def _stock(db: AsyncSession, product: Product) -> int:
    await db.refresh(product)
    return product.stock


async def _order_count(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(Order)) or 0


async def test_new_order_is_pending_with_snapshots_and_totals(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    mug = await make_product(name="Enamel mug", price_cents=1250, stock=10)
    tea = await make_product(name="Green tea", price_cents=799, stock=5)

    response = await place(client, shopper, (mug, 2), (tea, 1))

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "pending"
    assert order["user_id"] == str(shopper.user.id)
    assert order["total_cents"] == 2 * 1250 + 799
    assert order["total_usd"] == "32.99"
    lines = {line["product_id"]: line for line in order["items"]}
    assert lines[str(mug.id)] | {"id": None} == {
        "id": None,
        "product_id": str(mug.id),
        "product_name": "Enamel mug",
        "quantity": 2,
        "price_cents": 1250,
        "line_total_cents": 2500,
    }
    assert order["shipping_address"]["id"] == str(shopper.address.id)
    assert order["shipping_address"]["city"] == shopper.address.city
    assert order["created_at"].endswith("Z")


@pytest.mark.parametrize(
    "created_at",
    [datetime(2026, 3, 1, 9, 30, tzinfo=UTC), datetime(2026, 3, 1, 9, 30, 5, 120000, tzinfo=UTC)],
    ids=["whole-second", "fractional"],
)
async def test_the_address_snapshot_is_the_address_as_the_api_shows_it(
    client: httpx.AsyncClient,
    shopper: Shopper,
    make_product: ProductMaker,
    make_address: AddressMaker,
    created_at: datetime,
) -> None:
    """PostgreSQL builds the snapshot; it must read exactly like the address endpoint (and the seeded snapshots)."""
    address = await make_address(shopper.user, created_at=created_at, line2=None)
    shown = (await client.get(f"/addresses/{address.id}", headers=shopper.headers)).json()

    response = await client.post(
        "/orders",
        json={
            "items": [{"product_id": str((await make_product(stock=1)).id), "quantity": 1}],
            "shipping_address_id": str(address.id),
        },
        headers=shopper.headers,
    )

    assert response.status_code == 201, response.text
    assert response.json()["shipping_address"] == shown
    stored = (await client.get(f"/orders/{response.json()['id']}", headers=shopper.headers)).json()
    assert stored["shipping_address"] == shown


async def test_placing_an_order_takes_its_stock(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(stock=7)

    assert (await place(client, shopper, (product, 3))).status_code == 201

    assert await _stock(db, product) == 4


async def test_total_usd_has_two_decimal_places(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(price_cents=4000, stock=1)

    response = await place(client, shopper, (product, 1))

    assert response.json()["total_usd"] == "40.00"


async def test_snapshots_survive_product_and_address_changes(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(name="Original", price_cents=500, stock=3)
    order_id = (await place(client, shopper, (product, 1))).json()["id"]

    product.name, product.price_cents = "Renamed", 999
    await db.commit()
    await client.delete(f"/addresses/{shopper.address.id}", headers=shopper.headers)

    order = (await client.get(f"/orders/{order_id}", headers=shopper.headers)).json()
    assert order["items"][0]["product_name"] == "Original"
    assert order["items"][0]["price_cents"] == 500
    assert order["shipping_address"]["id"] == str(shopper.address.id)


async def test_order_creation_records_one_event(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(stock=2)

    order_id = uuid.UUID((await place(client, shopper, (product, 1))).json()["id"])

    events = (await db.execute(select(OrderEvent.type, OrderEvent.status).where(OrderEvent.order_id == order_id))).all()
    assert [(e.type, e.status) for e in events] == [("order_created", "pending")]


async def test_duplicate_product_is_rejected_and_reserves_nothing(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(stock=5)

    response = await place(client, shopper, (product, 1), (product, 2))

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "duplicate_product"
    assert body["errors"][0]["field"] == "items[1].product_id"
    assert await _stock(db, product) == 5
    assert await _order_count(db) == 0


async def test_unknown_product_is_unavailable(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    real = await make_product(stock=5)
    body = shopper.order((real, 1))
    body["items"].append({"product_id": str(uuid.uuid4()), "quantity": 1})

    response = await client.post("/orders", json=body, headers=shopper.headers)

    assert response.status_code == 422
    assert response.json()["code"] == "product_unavailable"
    assert [e["field"] for e in response.json()["errors"]] == ["items[1].product_id"]
    assert await _stock(db, real) == 5


async def test_archived_product_is_unavailable(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    archived = await make_product(stock=5, is_active=False)

    response = await place(client, shopper, (archived, 1))

    assert response.status_code == 422
    assert response.json()["code"] == "product_unavailable"


async def test_someone_elses_address_is_not_found(
    client: httpx.AsyncClient, shopper: Shopper, other_shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(stock=5)
    body = shopper.order((product, 1)) | {"shipping_address_id": str(other_shopper.address.id)}

    response = await client.post("/orders", json=body, headers=shopper.headers)

    assert response.status_code == 422
    assert response.json()["code"] == "address_not_found"
    assert response.json()["errors"][0]["field"] == "shipping_address_id"
    assert await _stock(db, product) == 5


async def test_deleted_address_is_not_found(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=5)
    await client.delete(f"/addresses/{shopper.address.id}", headers=shopper.headers)

    response = await place(client, shopper, (product, 1))

    assert response.json()["code"] == "address_not_found"


async def test_insufficient_stock_names_every_short_line_and_reserves_nothing(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    plenty = await make_product(stock=50)
    few = await make_product(stock=2)
    none = await make_product(stock=0)

    response = await place(client, shopper, (plenty, 5), (few, 3), (none, 1))

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "insufficient_stock"
    assert body["errors"] == [
        {
            "field": "items[1].quantity",
            "message": "Only 2 in stock, 3 requested",
            "product_id": str(few.id),
            "requested": 3,
            "available": 2,
        },
        {
            "field": "items[2].quantity",
            "message": "Only 0 in stock, 1 requested",
            "product_id": str(none.id),
            "requested": 1,
            "available": 0,
        },
    ]
    assert [await _stock(db, p) for p in (plenty, few, none)] == [50, 2, 0]
    assert await _order_count(db) == 0


async def test_exact_remaining_stock_can_be_bought(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, db: AsyncSession
) -> None:
    product = await make_product(stock=4)

    assert (await place(client, shopper, (product, 4))).status_code == 201
    assert await _stock(db, product) == 0


async def test_line_count_and_quantity_limits_are_validated(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=500)
    cases: list[dict[str, Any]] = [
        {"items": []},
        {"items": [{"product_id": str(uuid.uuid4()), "quantity": 1} for _ in range(51)]},
        {"items": [{"product_id": str(product.id), "quantity": 0}]},
        {"items": [{"product_id": str(product.id), "quantity": 101}]},
        {"items": [{"product_id": "not-a-uuid", "quantity": 1}]},
    ]
    for case in cases:
        body = {"shipping_address_id": str(shopper.address.id), **case}
        response = await client.post("/orders", json=body, headers=shopper.headers)
        assert response.status_code == 422, (case, response.text)
        assert response.json()["code"] == "validation_failed"
        assert response.json()["errors"][0]["field"].startswith("items")


async def test_unknown_fields_are_rejected(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=5)
    body = shopper.order((product, 1)) | {"coupon": "FREE"}

    response = await client.post("/orders", json=body, headers=shopper.headers)

    assert response.status_code == 422


async def test_fifty_lines_is_the_maximum_that_works(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    products = await make_product.batch(50, stock=10)

    response = await place(client, shopper, *((p, 1) for p in products))

    assert response.status_code == 201
    assert len(response.json()["items"]) == 50


async def test_anonymous_cannot_order(client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker) -> None:
    product = await make_product(stock=5)

    response = await client.post("/orders", json=shopper.order((product, 1)))

    assert response.status_code == 401
