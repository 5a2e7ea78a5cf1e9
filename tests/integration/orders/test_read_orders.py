"""Reading orders: own list, one order, admin list — and nobody sees someone else's order."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.orders.models import OrderEvent
from tests.integration.orders.conftest import Shop, Shopper, place
from tests.support import AddressMaker, AuthHeaders, ProductMaker, UserMaker


async def test_my_orders_are_newest_first_and_only_mine(
    client: httpx.AsyncClient, shopper: Shopper, other_shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=100)
    first = (await place(client, shopper, (product, 1))).json()["id"]
    second = (await place(client, shopper, (product, 2))).json()["id"]
    await place(client, other_shopper, (product, 1))

    page = (await client.get("/orders", headers=shopper.headers)).json()

    assert [o["id"] for o in page["items"]] == [second, first]
    assert page | {"items": None} == {"items": None, "total": 2, "page": 1, "per_page": 20, "pages": 1}
    assert page["items"][0]["items"][0]["quantity"] == 2


async def test_my_orders_paginate(client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker) -> None:
    product = await make_product(stock=100)
    ids = [(await place(client, shopper, (product, 1))).json()["id"] for _ in range(5)]

    page = (await client.get("/orders", params={"page": 2, "per_page": 2}, headers=shopper.headers)).json()

    assert [o["id"] for o in page["items"]] == [ids[2], ids[1]]
    assert (page["total"], page["pages"]) == (5, 3)


async def test_page_past_the_end_is_empty(client: httpx.AsyncClient, shopper: Shopper) -> None:
    page = (await client.get("/orders", params={"page": 9}, headers=shopper.headers)).json()

    assert page["items"] == []
    assert page["total"] == 0
    assert page["pages"] == 0


async def test_my_orders_filter_by_status(
    client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=100)
    kept = (await place(client, shopper, (product, 1))).json()["id"]
    cancelled = (await place(client, shopper, (product, 1))).json()["id"]
    await client.post(f"/orders/{cancelled}/cancel", headers=shopper.headers)

    page = (await client.get("/orders", params={"status": "pending"}, headers=shopper.headers)).json()

    assert [o["id"] for o in page["items"]] == [kept]


async def test_bad_list_parameters_are_422(client: httpx.AsyncClient, shopper: Shopper) -> None:
    for params in ({"status": "lost"}, {"page": 0}, {"per_page": 0}, {"per_page": 101}):
        response = await client.get("/orders", params=params, headers=shopper.headers)
        assert response.status_code == 422, params


async def test_owner_reads_their_order(client: httpx.AsyncClient, shopper: Shopper, make_product: ProductMaker) -> None:
    product = await make_product(stock=5)
    placed = (await place(client, shopper, (product, 1))).json()

    response = await client.get(f"/orders/{placed['id']}", headers=shopper.headers)

    assert response.status_code == 200
    assert response.json() == placed


async def test_someone_elses_order_is_404_like_a_missing_one(
    client: httpx.AsyncClient, shopper: Shopper, other_shopper: Shopper, make_product: ProductMaker
) -> None:
    product = await make_product(stock=5)
    order_id = (await place(client, shopper, (product, 1))).json()["id"]

    theirs = await client.get(f"/orders/{order_id}", headers=other_shopper.headers)
    missing = await client.get(f"/orders/{uuid.uuid4()}", headers=other_shopper.headers)

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"] == missing.json()["detail"]


async def test_staff_read_any_order(
    client: httpx.AsyncClient, shopper: Shopper, staff_headers: dict[str, str], make_product: ProductMaker
) -> None:
    product = await make_product(stock=5)
    order_id = (await place(client, shopper, (product, 1))).json()["id"]

    assert (await client.get(f"/orders/{order_id}", headers=staff_headers)).status_code == 200


async def test_admin_list_shows_everyones_orders_with_filters(shop: Shop) -> None:
    product = await shop.products(stock=10)
    mine = await shop.order_id(shop.shopper, (product, 1))
    theirs = await shop.order_id(shop.other, (product, 1))
    await shop.client.patch(f"/orders/{theirs}/status", json={"status": "paid"}, headers=shop.staff)

    everyone = (await shop.client.get("/admin/orders", headers=shop.staff)).json()
    paid = (await shop.client.get("/admin/orders", params={"status": "paid"}, headers=shop.staff)).json()
    by_user = (
        await shop.client.get("/admin/orders", params={"user_id": str(shop.shopper.user.id)}, headers=shop.staff)
    ).json()

    assert [o["id"] for o in everyone["items"]] == [theirs, mine]
    assert [o["id"] for o in paid["items"]] == [theirs]
    assert [o["id"] for o in by_user["items"]] == [mine]


async def test_admin_list_needs_orders_manage(client: httpx.AsyncClient, shopper: Shopper) -> None:
    response = await client.get("/admin/orders", headers=shopper.headers)

    assert response.status_code == 403
    assert response.json()["detail"] == "Permission required: orders:manage"
    assert (await client.get("/admin/orders")).status_code == 401


async def test_a_strangers_timeline_request_publishes_nothing_for_the_order(
    committed_client: httpx.AsyncClient,
    committed_shopper: Shopper,
    committed_session: AsyncSession,
    auth_headers: AuthHeaders,
) -> None:
    # No worker runs here, so the order's event stays unpublished until a timeline request publishes it.
    product = await ProductMaker(committed_session)(stock=5)
    stranger = await UserMaker(committed_session)()
    await AddressMaker(committed_session)(stranger)
    order_id = (await place(committed_client, committed_shopper, (product, 1))).json()["id"]

    refused = await committed_client.get(f"/orders/{order_id}/events", headers=auth_headers(stranger))

    event = select(OrderEvent.event_id, OrderEvent.dispatched_at).where(OrderEvent.order_id == uuid.UUID(order_id))
    assert refused.status_code == 404
    assert (await committed_session.execute(event)).one() == (None, None), "published for a stranger's request"
    await committed_session.rollback()
    timeline = await committed_client.get(f"/orders/{order_id}/events", headers=committed_shopper.headers)
    assert [e["type"] for e in timeline.json()] == ["order_created"]
    assert (await committed_session.execute(event)).one().dispatched_at is not None
