"""Deep pages and cursors (contract §1): numbered pages stop at the 10,000th item; cursors go anywhere, once each."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.integration.orders.conftest import Shop, Shopper, place
from tests.support import ProductMaker


async def _follow(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> tuple[list[str], list[dict[str, Any]]]:
    """Every order id met by following the cursors from the first page, and every page's body."""
    ids: list[str] = []
    pages: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(100):
        response = await client.get(path, params={**params, "cursor": cursor}, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        ids.extend(order["id"] for order in page["items"])
        if page["next_cursor"] is None:
            return ids, pages
        cursor = page["next_cursor"]
        params = {key: value for key, value in params.items() if key == "per_page"}  # filters come from the cursor
    raise AssertionError("the cursors never ended")


async def test_following_cursors_visits_every_order_once_newest_first(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=100)
    placed = [(await place(client, shopper, (product, 1))).json()["id"] for _ in range(5)]

    ids, pages = await _follow(client, "/orders", shopper.headers, per_page=2)

    assert ids == placed[::-1]
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert all(set(page) == {"items", "per_page", "next_cursor"} for page in pages)
    assert pages[0]["per_page"] == 2


async def test_cursor_page_of_an_empty_list_has_no_next_cursor(client: httpx.AsyncClient, shopper: Shopper) -> None:
    response = await client.get("/orders", params={"cursor": ""}, headers=shopper.headers)

    assert response.json() == {"items": [], "per_page": 20, "next_cursor": None}


async def test_cursors_keep_the_status_filter_they_were_made_for(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=100)
    placed = [(await place(client, shopper, (product, 1))).json()["id"] for _ in range(5)]
    await client.post(f"/orders/{placed[1]}/cancel", headers=shopper.headers)

    ids, _ = await _follow(client, "/orders", shopper.headers, status="pending", per_page=1)

    assert ids == [placed[4], placed[3], placed[2], placed[0]]


async def test_admin_cursors_keep_the_user_and_status_filters(shop: Shop) -> None:
    product = await shop.products(stock=100)
    mine = [await shop.order_id(shop.shopper, (product, 1)) for _ in range(3)]
    theirs = [await shop.order_id(shop.other, (product, 1)) for _ in range(3)]
    await shop.client.patch(f"/orders/{theirs[0]}/status", json={"status": "paid"}, headers=shop.staff)

    by_user, _ = await _follow(shop.client, "/admin/orders", shop.staff, user_id=str(shop.shopper.user.id), per_page=2)
    by_both, _ = await _follow(
        shop.client,
        "/admin/orders",
        shop.staff,
        user_id=str(shop.other.user.id),
        status="pending",
        per_page=1,
    )
    everyone, _ = await _follow(shop.client, "/admin/orders", shop.staff, per_page=4)

    assert by_user == mine[::-1]
    assert by_both == [theirs[2], theirs[1]]
    assert everyone == (mine + theirs)[::-1]


async def test_a_cursor_may_repeat_its_filters_but_not_change_them(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=100)
    for _ in range(3):
        await place(client, shopper, (product, 1))
    first = (
        await client.get("/orders", params={"cursor": "", "status": "pending", "per_page": 1}, headers=shopper.headers)
    ).json()

    same = await client.get(
        "/orders", params={"cursor": first["next_cursor"], "status": "pending"}, headers=shopper.headers
    )
    changed = await client.get(
        "/orders", params={"cursor": first["next_cursor"], "status": "paid"}, headers=shopper.headers
    )

    assert same.status_code == 200
    assert same.json()["per_page"] == 1  # the cursor's page size, since none was given
    assert changed.status_code == 422
    assert changed.json()["code"] == "invalid_cursor"


async def _a_next_cursor(client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker) -> str:
    product = await make_product(stock=100)
    for _ in range(2):
        await place(client, shopper, (product, 1))
    page = (await client.get("/orders", params={"cursor": "", "per_page": 1}, headers=shopper.headers)).json()
    cursor: str = page["next_cursor"]
    return cursor


def _tampered(cursor: str) -> list[str]:
    flipped = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    return [flipped, cursor[:-2], cursor + "AA", "not-a-cursor", "%%%", "A" * 600, "é"]


async def test_a_malformed_or_tampered_cursor_is_invalid_cursor(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    cursor = await _a_next_cursor(client, shopper, make_product)

    for bad in _tampered(cursor):
        response = await client.get("/orders", params={"cursor": bad}, headers=shopper.headers)
        assert response.status_code == 422, bad
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "invalid_cursor", bad


async def test_a_cursor_works_only_for_the_list_and_customer_it_was_made_for(shop: Shop) -> None:
    cursor = await _a_next_cursor(shop.client, shop.shopper, shop.products)

    as_other = await shop.client.get("/orders", params={"cursor": cursor}, headers=shop.other.headers)
    on_admin = await shop.client.get("/admin/orders", params={"cursor": cursor}, headers=shop.staff)

    assert (as_other.status_code, as_other.json()["code"]) == (422, "invalid_cursor")
    assert (on_admin.status_code, on_admin.json()["code"]) == (422, "invalid_cursor")


async def test_page_and_cursor_together_are_422(client: httpx.AsyncClient, shopper: Shopper) -> None:
    response = await client.get("/orders", params={"cursor": "", "page": 2}, headers=shopper.headers)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "page"


@pytest.mark.parametrize(("page", "per_page"), [(101, 100), (10_001, 1), (501, 20)])
async def test_a_page_starting_past_the_10000th_item_is_page_too_deep(
    client: httpx.AsyncClient, shopper: Shopper, staff_headers: dict[str, str], page: int, per_page: int
) -> None:
    params = {"page": page, "per_page": per_page}

    for path, headers in (("/orders", shopper.headers), ("/admin/orders", staff_headers), ("/products", {})):
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 422, path
        assert response.json()["code"] == "page_too_deep"
        assert "cursor" in response.json()["detail"]


async def test_the_last_page_before_the_limit_is_served(client: httpx.AsyncClient, shopper: Shopper) -> None:
    response = await client.get("/orders", params={"page": 100, "per_page": 100}, headers=shopper.headers)

    assert response.status_code == 200
    assert response.json()["items"] == []


async def test_following_cursors_while_orders_are_placed_visits_each_existing_order_once(
    committed_client: httpx.AsyncClient, committed_shopper: Shopper, committed_products: ProductMaker
) -> None:
    product = await committed_products(stock=1000)
    existing = [(await place(committed_client, committed_shopper, (product, 1))).json()["id"] for _ in range(12)]
    stop, arriving = asyncio.Event(), asyncio.Event()
    arrived: list[str] = []

    async def keep_placing() -> None:
        while not stop.is_set():
            arrived.append((await place(committed_client, committed_shopper, (product, 1))).json()["id"])
            if len(arrived) >= 3:
                arriving.set()

    placing = [asyncio.create_task(keep_placing()) for _ in range(3)]
    try:
        await asyncio.wait_for(arriving.wait(), 30)  # orders are arriving before the first page is read
        ids, pages = await _follow(committed_client, "/orders", committed_shopper.headers, per_page=2)
    finally:
        stop.set()
        await asyncio.gather(*placing)

    assert len(pages) > 6
    assert len(ids) == len(set(ids))  # nothing twice
    assert set(existing) <= set(ids)  # everything that existed, once
    assert ids[-len(existing) :] == existing[::-1]  # newest first, and nothing newer after them
    assert set(ids) <= set(existing) | set(arrived)
