"""The public list costs one SQL statement (the page and its total together), whatever the page size."""

from __future__ import annotations

import uuid

import httpx
from litestar import Litestar

from tests.support import ProductMaker, count_statements


async def test_list_statement_count_does_not_depend_on_page_size(
    client: httpx.AsyncClient, app: Litestar, make_product: ProductMaker
) -> None:
    await make_product.batch(150)  # both pages below are full: the total comes with the page

    async with count_statements(app) as small:
        assert len((await client.get("/products", params={"per_page": 1})).json()["items"]) == 1
    async with count_statements(app) as large:
        assert len((await client.get("/products", params={"per_page": 100})).json()["items"]) == 100

    assert len(small) == len(large) == 1, (small, large)


async def test_a_short_page_is_one_statement(
    client: httpx.AsyncClient, app: Litestar, make_product: ProductMaker
) -> None:
    await make_product.batch(3)

    async with count_statements(app) as statements:
        body = (await client.get("/products", params={"q": "", "per_page": 20})).json()

    assert body["total"] == 3
    assert len(statements) == 1, statements


async def test_a_page_past_the_end_still_reports_the_total(
    client: httpx.AsyncClient, app: Litestar, make_product: ProductMaker
) -> None:
    await make_product.batch(3)

    async with count_statements(app) as statements:
        body = (await client.get("/products", params={"page": 5, "per_page": 2})).json()

    assert (body["items"], body["total"], body["pages"]) == ([], 3, 2)
    assert len(statements) == 2


async def test_product_page_is_one_statement(
    client: httpx.AsyncClient, app: Litestar, make_product: ProductMaker
) -> None:
    product = await make_product()

    async with count_statements(app) as statements:
        assert (await client.get(f"/products/{product.id}")).status_code == 200
    async with count_statements(app) as missing:
        assert (await client.get(f"/products/{uuid.uuid4()}")).status_code == 404

    assert (len(statements), len(missing)) == (1, 1)
