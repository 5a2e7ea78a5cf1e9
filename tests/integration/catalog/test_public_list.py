"""``GET /products``: the public catalog page."""

from __future__ import annotations

import httpx
import pytest

from tests.support import ProductMaker

PRODUCT_KEYS = {"id", "sku", "name", "description", "price_cents", "stock", "is_active", "created_at", "updated_at"}


async def test_list_is_public_and_has_the_page_shape(client: httpx.AsyncClient, make_product: ProductMaker) -> None:
    await make_product.batch(3)

    response = await client.get("/products")

    assert response.status_code == 200
    body = response.json()
    assert body.keys() == {"items", "total", "page", "per_page", "pages"}
    assert (body["total"], body["page"], body["per_page"], body["pages"]) == (3, 1, 20, 1)
    assert all(item.keys() == PRODUCT_KEYS for item in body["items"])
    assert body["items"][0]["created_at"].endswith("Z")


async def test_list_ignores_credentials_even_invalid_ones(
    client: httpx.AsyncClient, make_product: ProductMaker
) -> None:
    await make_product()

    response = await client.get("/products", headers={"Authorization": "Bearer not-a-token"})

    assert response.status_code == 200
    assert response.json()["total"] == 1


async def test_list_is_newest_first_and_excludes_archived(
    client: httpx.AsyncClient, make_product: ProductMaker
) -> None:
    oldest, archived, newest = await make_product.batch(3)
    archived.is_active = False
    await make_product.session.commit()

    items = (await client.get("/products")).json()["items"]

    assert [item["id"] for item in items] == [str(newest.id), str(oldest.id)]


async def test_q_matches_name_case_insensitively(client: httpx.AsyncClient, make_product: ProductMaker) -> None:
    mug = await make_product(name="Enamel Camping Mug")
    await make_product(name="Oak Chair")

    body = (await client.get("/products", params={"q": "cAmPiNg mu"})).json()

    assert [item["id"] for item in body["items"]] == [str(mug.id)]
    assert body["total"] == 1


async def test_q_matches_sku_case_insensitively(client: httpx.AsyncClient, make_product: ProductMaker) -> None:
    lamp = await make_product(sku="LAMP-0042", name="Desk Lamp")
    await make_product(sku="CHAIR-0001", name="Oak Chair")

    body = (await client.get("/products", params={"q": "lamp-00"})).json()

    assert [item["id"] for item in body["items"]] == [str(lamp.id)]


async def test_q_treats_like_wildcards_literally(client: httpx.AsyncClient, make_product: ProductMaker) -> None:
    discount = await make_product(name="100% Cotton Tote")
    await make_product(name="Cotton Tote")

    percent = (await client.get("/products", params={"q": "100%"})).json()["items"]
    underscore = (await client.get("/products", params={"q": "_"})).json()["items"]

    assert [item["id"] for item in percent] == [str(discount.id)]
    assert underscore == []


async def test_blank_q_is_no_filter(client: httpx.AsyncClient, make_product: ProductMaker) -> None:
    await make_product.batch(2)

    assert (await client.get("/products", params={"q": "   "})).json()["total"] == 2


async def test_in_stock_filters(client: httpx.AsyncClient, make_product: ProductMaker) -> None:
    stocked = await make_product(stock=5)
    sold_out = await make_product(stock=0)

    in_stock = (await client.get("/products", params={"in_stock": "true"})).json()["items"]
    out_of_stock = (await client.get("/products", params={"in_stock": "false"})).json()["items"]
    everything = (await client.get("/products")).json()["items"]

    assert [item["id"] for item in in_stock] == [str(stocked.id)]
    assert [item["id"] for item in out_of_stock] == [str(sold_out.id)]
    assert len(everything) == 2


async def test_filters_combine(client: httpx.AsyncClient, make_product: ProductMaker) -> None:
    wanted = await make_product(name="Walnut Bowl", stock=3)
    await make_product(name="Walnut Board", stock=0)
    await make_product(name="Glass Bowl", stock=3)

    items = (await client.get("/products", params={"q": "walnut", "in_stock": "true"})).json()["items"]

    assert [item["id"] for item in items] == [str(wanted.id)]


async def test_pagination_walks_the_list_without_overlap(client: httpx.AsyncClient, make_product: ProductMaker) -> None:
    products = await make_product.batch(5)
    newest_first = [str(p.id) for p in reversed(products)]

    pages = [(await client.get("/products", params={"page": n, "per_page": 2})).json() for n in (1, 2, 3, 4)]

    assert [item["id"] for page in pages for item in page["items"]] == newest_first
    assert [(p["total"], p["pages"], p["page"], p["per_page"]) for p in pages] == [
        (5, 3, 1, 2),
        (5, 3, 2, 2),
        (5, 3, 3, 2),
        (5, 3, 4, 2),
    ]
    assert pages[3]["items"] == []


async def test_empty_catalog_is_an_empty_page(client: httpx.AsyncClient) -> None:
    body = (await client.get("/products")).json()

    assert body == {"items": [], "total": 0, "page": 1, "per_page": 20, "pages": 0}


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "-1"},
        {"page": "abc"},
        {"per_page": "0"},
        {"per_page": "101"},
        {"per_page": "ten"},
        {"in_stock": "maybe"},
        {"q": "x" * 201},
        {"q": "a\x00b"},
    ],
)
async def test_out_of_range_query_parameters_are_422(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await client.get("/products", params=params)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_failed"
    assert response.json()["errors"][0]["field"] == next(iter(params))
