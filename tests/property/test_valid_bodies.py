"""Every body a request factory makes is one the API accepts, and the API does what the body says."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.property.conftest import World
from tests.property.endpoints import (
    ADDRESS_CREATE,
    ENDPOINTS,
    ORDER_CREATE,
    PRODUCT_CREATE,
    REGISTER,
    STATUS_CHANGE,
    Endpoint,
)

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

Example = Callable[[], AbstractAsyncContextManager[None]]


async def send(client: httpx.AsyncClient, endpoint: Endpoint, world: World, body: Any) -> httpx.Response:
    return await client.request(endpoint.method, endpoint.path(world), json=body, headers=endpoint.headers(world))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
@EXAMPLES
@given(seed=SEEDS)
async def test_factory_made_bodies_are_accepted(
    endpoint: Endpoint, seed: int, client: httpx.AsyncClient, world: World, example: Example
) -> None:
    body = endpoint.body(world, seed)

    async with example():
        response = await send(client, endpoint, world, body)

    assert response.status_code in endpoint.accepted, (body, response.text)


@EXAMPLES
@given(seed=SEEDS)
async def test_a_created_product_is_the_body_sent(
    seed: int, client: httpx.AsyncClient, world: World, example: Example
) -> None:
    body = PRODUCT_CREATE.body(world, seed)

    async with example():
        created = (await send(client, PRODUCT_CREATE, world, body)).json()

    assert {name: created[name] for name in body} == body
    assert created["is_active"] is True


@EXAMPLES
@given(seed=SEEDS)
async def test_a_created_address_is_the_body_sent(
    seed: int, client: httpx.AsyncClient, world: World, example: Example
) -> None:
    body = ADDRESS_CREATE.body(world, seed)

    async with example():
        created = (await send(client, ADDRESS_CREATE, world, body)).json()

    assert {name: created[name] for name in body} == body


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=SEEDS)
async def test_registered_credentials_log_in(
    seed: int, client: httpx.AsyncClient, world: World, example: Example
) -> None:
    body = REGISTER.body(world, seed)

    async with example():
        registered = await send(client, REGISTER, world, body)
        login = await client.post("/auth/login", json={"email": body["email"], "password": body["password"]})

    assert registered.json()["roles"] == ["customer"]
    assert login.status_code == 200, login.text


@EXAMPLES
@given(seed=SEEDS)
async def test_a_placed_order_snapshots_and_totals_its_lines(
    seed: int, client: httpx.AsyncClient, world: World, example: Example
) -> None:
    body = ORDER_CREATE.body(world, seed)
    products = {str(product.id): product for product in world.products}

    async with example():
        order = (await send(client, ORDER_CREATE, world, body)).json()

    assert [(line["product_id"], line["quantity"]) for line in order["items"]] == [
        (line["product_id"], line["quantity"]) for line in body["items"]
    ]
    for line in order["items"]:
        product = products[line["product_id"]]
        assert (line["product_name"], line["price_cents"]) == (product.name, product.price_cents)
    assert order["total_cents"] == sum(line["price_cents"] * line["quantity"] for line in order["items"])
    assert order["shipping_address"]["id"] == str(world.address.id)


@EXAMPLES
@given(seed=SEEDS)
async def test_a_status_change_is_applied_exactly_when_the_status_machine_allows_it(
    seed: int, client: httpx.AsyncClient, world: World, example: Example, db_connection: Any
) -> None:
    body = STATUS_CHANGE.body(world, seed)
    history = text("SELECT status FROM order_events WHERE order_id = :order ORDER BY id")

    async with example():
        response = await send(client, STATUS_CHANGE, world, body)
        statuses = (await db_connection.execute(history, {"order": uuid.UUID(world.order_id)})).scalars().all()

    allowed = body["status"] in {"paid", "cancelled"}  # the world's order is pending
    assert response.status_code == (200 if allowed else 409), response.text
    assert statuses == ["pending", body["status"]] if allowed else ["pending"]
