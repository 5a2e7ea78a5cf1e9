"""Query shapes: listing and placing orders cost a fixed number of statements, whatever the size."""

from __future__ import annotations

import httpx
from litestar import Litestar

from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker, count_statements


async def test_listing_orders_costs_the_same_statements_for_1_or_100_per_page(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, app: Litestar
) -> None:
    products = await make_product.batch(3, stock=1000)
    for _ in range(100):
        await place(client, shopper, *((p, 1) for p in products))

    counts = {}
    for per_page in (1, 100):
        async with count_statements(app) as statements:
            response = await client.get("/orders", params={"per_page": per_page}, headers=shopper.headers)
        assert len(response.json()["items"]) == per_page
        counts[per_page] = len(statements)

    assert counts[1] == counts[100] == 2  # principal; the page with its lines and total


async def test_placing_an_order_costs_the_same_statements_for_1_or_50_lines(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, app: Litestar
) -> None:
    products = await make_product.batch(50, stock=10)

    counts = {}
    for lines in (1, 50):
        async with count_statements(app) as statements:
            response = await place(client, shopper, *((p, 1) for p in products[:lines]))
        assert response.status_code == 201
        counts[lines] = len(statements)

    # principal; then one statement reads the address, locks, checks and writes stock, order, lines and event
    assert counts[1] == counts[50] == 2


async def test_idempotent_order_adds_two_statements(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker, app: Litestar
) -> None:
    product = await make_product(stock=10)

    async with count_statements(app) as statements:
        await place(client, shopper, (product, 1), headers={"Idempotency-Key": "counted"})

    assert len(statements) == 4  # the claim and storing the response


async def test_a_status_change_that_returns_no_stock_is_one_statement(
    client: httpx.AsyncClient,
    shopper: Shopper,
    make_product: ProductMaker,
    app: Litestar,
    staff_headers: dict[str, str],
) -> None:
    order = (await place(client, shopper, (await make_product(stock=10), 1))).json()

    async with count_statements(app) as statements:
        response = await client.patch(f"/orders/{order['id']}/status", json={"status": "paid"}, headers=staff_headers)

    assert response.status_code == 200
    assert len(statements) == 2  # principal; lock, move, event and the order with its lines
