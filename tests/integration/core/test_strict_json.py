"""JSON bodies must have the documented JSON types: nothing is coerced, and an error names the field to fix."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from app.domain.catalog.models import Product
from app.domain.orders.models import Order
from tests.support import AddressMaker, AuthHeaders, ProductMaker, UserMaker


def _new_product(**overrides: Any) -> dict[str, Any]:
    return {"sku": f"STRICT-{uuid.uuid4().hex[:12]}", "name": "Strict mug", "price_cents": 1299, "stock": 5} | overrides


def _field_errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_failed"
    errors: list[dict[str, Any]] = body["errors"]
    return errors


@pytest.fixture
async def staff_headers(make_user: UserMaker, auth_headers: AuthHeaders) -> dict[str, str]:
    return auth_headers(await make_user(roles=("staff",)))


@dataclass
class OrderAttempt:
    """A customer about to order one unit of a product that has 10 in stock; ``body`` is valid until changed."""

    customer: User
    headers: dict[str, str]
    product: Product
    body: dict[str, Any]


@pytest.fixture
async def attempt(db: AsyncSession, make_user: UserMaker, auth_headers: AuthHeaders) -> OrderAttempt:
    customer = await make_user()
    address = await AddressMaker(db)(customer)
    product = await ProductMaker(db)(stock=10)
    body = {"items": [{"product_id": str(product.id), "quantity": 1}], "shipping_address_id": str(address.id)}
    return OrderAttempt(customer, auth_headers(customer), product, body)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"price_cents": "1299"}, "price_cents", "Expected `int`, got `str`"),
        ({"stock": True}, "stock", "Expected `int`, got `bool`"),
        ({"stock": "5"}, "stock", "Expected `int`, got `str`"),
        ({"name": 42}, "name", "Expected `str`, got `int`"),
    ],
)
async def test_wrong_json_type_is_422_naming_the_field_and_stores_nothing(
    client: httpx.AsyncClient,
    db: AsyncSession,
    staff_headers: dict[str, str],
    overrides: dict[str, Any],
    field: str,
    message: str,
) -> None:
    body = _new_product(**overrides)

    response = await client.post("/products", json=body, headers=staff_headers)

    assert _field_errors(response) == [{"field": field, "message": message}]
    assert field in response.json()["detail"]
    assert await db.scalar(select(func.count()).select_from(Product).where(Product.sku == body["sku"])) == 0


async def test_string_quantity_is_422_and_neither_orders_nor_takes_stock(
    client: httpx.AsyncClient, db: AsyncSession, attempt: OrderAttempt
) -> None:
    attempt.body["items"][0]["quantity"] = "5"

    response = await client.post("/orders", json=attempt.body, headers=attempt.headers)

    assert _field_errors(response) == [{"field": "items[0].quantity", "message": "Expected `int`, got `str`"}]
    orders = select(func.count()).select_from(Order).where(Order.user_id == attempt.customer.id)
    assert await db.scalar(orders) == 0
    assert await db.scalar(select(Product.stock).where(Product.id == attempt.product.id)) == 10


async def test_valid_order_body_still_places_the_order(client: httpx.AsyncClient, attempt: OrderAttempt) -> None:
    headers, body = attempt.headers, attempt.body

    response = await client.post("/orders", json=body, headers=headers)

    assert response.status_code == 201, response.text
    assert response.json()["items"][0]["quantity"] == 1


async def test_unknown_top_level_field_is_named(client: httpx.AsyncClient, attempt: OrderAttempt) -> None:
    headers, body = attempt.headers, attempt.body

    response = await client.post("/orders", json=body | {"coupon": 1}, headers=headers)

    [error] = _field_errors(response)
    assert error["field"] == "coupon"
    assert "coupon" in error["message"]


async def test_unknown_nested_field_is_named_with_its_path(client: httpx.AsyncClient, attempt: OrderAttempt) -> None:
    headers, body = attempt.headers, attempt.body
    body["items"][0]["extra"] = True

    response = await client.post("/orders", json=body, headers=headers)

    [error] = _field_errors(response)
    assert error["field"] == "items[0].extra"


async def test_missing_nested_field_is_named_with_its_path(client: httpx.AsyncClient, attempt: OrderAttempt) -> None:
    headers, body = attempt.headers, attempt.body
    del body["items"][0]["product_id"]

    response = await client.post("/orders", json=body, headers=headers)

    [error] = _field_errors(response)
    assert error["field"] == "items[0].product_id"


async def test_string_boolean_does_not_deactivate_a_user(
    client: httpx.AsyncClient, db: AsyncSession, make_user: UserMaker, auth_headers: AuthHeaders
) -> None:
    admin, user = await make_user(roles=("admin",)), await make_user()

    response = await client.patch(f"/admin/users/{user.id}", json={"is_active": "false"}, headers=auth_headers(admin))

    assert _field_errors(response) == [{"field": "is_active", "message": "Expected `bool`, got `str`"}]
    assert await db.scalar(select(User.is_active).where(User.id == user.id)) is True


@pytest.mark.parametrize("body", [b"[]", b"null", b'"text"'])
async def test_body_of_the_wrong_json_kind_is_422_on_the_body(
    client: httpx.AsyncClient, staff_headers: dict[str, str], body: bytes
) -> None:
    response = await client.post(
        "/products", content=body, headers=staff_headers | {"Content-Type": "application/json"}
    )

    [error] = _field_errors(response)
    assert error["field"] == "body"


@pytest.mark.parametrize("body", [b"{", b'{"sku": }', b"\xff"])
async def test_body_that_is_not_json_is_400_malformed_json(
    client: httpx.AsyncClient, staff_headers: dict[str, str], body: bytes
) -> None:
    response = await client.post(
        "/products", content=body, headers=staff_headers | {"Content-Type": "application/json"}
    )

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "malformed_json"


async def test_form_body_is_not_held_to_json_types(client: httpx.AsyncClient, make_user: UserMaker) -> None:
    user = await make_user(password="password-1")

    response = await client.post("/auth/token", data={"username": user.email, "password": "password-1"})

    assert response.status_code == 200, response.text


async def test_integer_written_with_a_zero_fraction_is_an_integer(
    client: httpx.AsyncClient, attempt: OrderAttempt
) -> None:
    # JSON has one number type, and JSON Schema's "integer" includes 2.0.
    attempt.body["items"][0]["quantity"] = 2.0

    response = await client.post("/orders", json=attempt.body, headers=attempt.headers)

    assert response.status_code == 201, response.text
    assert response.json()["items"][0]["quantity"] == 2


async def test_fractional_number_for_an_integer_is_422(client: httpx.AsyncClient, attempt: OrderAttempt) -> None:
    attempt.body["items"][0]["quantity"] = 2.5

    response = await client.post("/orders", json=attempt.body, headers=attempt.headers)

    assert _field_errors(response) == [{"field": "items[0].quantity", "message": "Expected `int`, got `float`"}]
