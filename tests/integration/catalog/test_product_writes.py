"""``POST``/``PATCH``/``DELETE /products``: products:manage only; skus are unique; archiving keeps the row."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from app.domain.catalog.models import Product
from app.testing.factories import ProductCreateFactory
from tests.support import AuthHeaders, ProductMaker, UserMaker


def new_product(**overrides: Any) -> dict[str, Any]:
    body = {
        "sku": f"TEST-{uuid.uuid4().hex[:8]}",
        "name": "Enamel Mug",
        "description": "Holds coffee.",
        "price_cents": 1299,
        "stock": 10,
    }
    return body | overrides


async def stored(db: AsyncSession, product_id: str | uuid.UUID) -> Product | None:
    return (
        await db.execute(
            select(Product).where(Product.id == uuid.UUID(str(product_id))).execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


# --- create -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "admin"])
async def test_create_with_products_manage_is_201(
    client: httpx.AsyncClient, db: AsyncSession, make_user: UserMaker, auth_headers: AuthHeaders, role: str
) -> None:
    user = await make_user(roles=(role,))
    body = new_product()

    response = await client.post("/products", json=body, headers=auth_headers(user))

    assert response.status_code == 201, response.text
    created = response.json()
    assert {k: created[k] for k in body} == body
    assert created["is_active"] is True
    assert created["created_at"].endswith("Z")
    row = await stored(db, created["id"])
    assert row is not None
    assert (row.sku, row.price_cents, row.stock) == (body["sku"], 1299, 10)
    assert uuid.UUID(created["id"]).version == 7


async def test_create_defaults_description_to_empty(
    client: httpx.AsyncClient, staff: User, auth_headers: AuthHeaders
) -> None:
    body = new_product()
    del body["description"]

    response = await client.post("/products", json=body, headers=auth_headers(staff))

    assert response.status_code == 201
    assert response.json()["description"] == ""


async def test_create_accepts_a_factory_body(client: httpx.AsyncClient, staff: User, auth_headers: AuthHeaders) -> None:
    import msgspec

    response = await client.post(
        "/products", json=msgspec.to_builtins(ProductCreateFactory.build()), headers=auth_headers(staff)
    )

    assert response.status_code == 201, response.text


async def test_create_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/products", json=new_product())

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_create_as_customer_is_403(
    client: httpx.AsyncClient, db: AsyncSession, customer: User, auth_headers: AuthHeaders
) -> None:
    body = new_product()

    response = await client.post("/products", json=body, headers=auth_headers(customer))

    assert response.status_code == 403
    assert response.json()["detail"] == "Permission required: products:manage"
    assert response.json()["code"] == "permission_denied"
    assert (await db.scalar(select(Product.id).where(Product.sku == body["sku"]))) is None


async def test_duplicate_sku_is_409_sku_taken(
    client: httpx.AsyncClient, make_product: ProductMaker, staff: User, auth_headers: AuthHeaders
) -> None:
    existing = await make_product()

    response = await client.post("/products", json=new_product(sku=existing.sku), headers=auth_headers(staff))

    assert response.status_code == 409
    assert response.json()["code"] == "sku_taken"


async def test_sku_of_an_archived_product_is_still_taken(
    client: httpx.AsyncClient, make_product: ProductMaker, staff: User, auth_headers: AuthHeaders
) -> None:
    archived = await make_product(is_active=False)

    response = await client.post("/products", json=new_product(sku=archived.sku), headers=auth_headers(staff))

    assert response.status_code == 409
    assert response.json()["code"] == "sku_taken"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price_cents": -1}, "price_cents"),
        ({"stock": -1}, "stock"),
        ({"price_cents": 100_000_001}, "price_cents"),
        ({"stock": 1_000_000_001}, "stock"),
        ({"price_cents": 12.5}, "price_cents"),
        ({"sku": ""}, "sku"),
        ({"sku": "has space"}, "sku"),
        ({"sku": "-leading-dash"}, "sku"),
        ({"sku": "S" * 65}, "sku"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"description": "d" * 5001}, "description"),
        ({"description": "nul\x00byte"}, "description"),
    ],
)
async def test_invalid_create_body_is_422_naming_the_field(
    client: httpx.AsyncClient, staff: User, auth_headers: AuthHeaders, overrides: dict[str, Any], field: str
) -> None:
    response = await client.post("/products", json=new_product(**overrides), headers=auth_headers(staff))

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_unknown_field_is_422(client: httpx.AsyncClient, staff: User, auth_headers: AuthHeaders) -> None:
    response = await client.post("/products", json=new_product(unexpected=1), headers=auth_headers(staff))

    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert "unexpected" in response.json()["detail"]


@pytest.mark.parametrize("missing", ["sku", "name", "price_cents", "stock"])
async def test_missing_required_field_is_422(
    client: httpx.AsyncClient, staff: User, auth_headers: AuthHeaders, missing: str
) -> None:
    body = new_product()
    del body[missing]

    response = await client.post("/products", json=body, headers=auth_headers(staff))

    assert response.status_code == 422


async def test_multiline_description_is_accepted(
    client: httpx.AsyncClient, staff: User, auth_headers: AuthHeaders
) -> None:
    response = await client.post(
        "/products", json=new_product(description="Line one.\n\tLine two."), headers=auth_headers(staff)
    )

    assert response.status_code == 201
    assert response.json()["description"] == "Line one.\n\tLine two."


async def test_malformed_json_is_400(client: httpx.AsyncClient, staff: User, auth_headers: AuthHeaders) -> None:
    response = await client.post(
        "/products",
        content=b'{"sku": "X",',
        headers={**auth_headers(staff), "Content-Type": "application/json"},
    )

    assert response.status_code == 400


# --- update -----------------------------------------------------------------------------------------------------


async def test_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, db: AsyncSession, make_product: ProductMaker, staff: User, auth_headers: AuthHeaders
) -> None:
    product = await make_product(name="Mug", price_cents=1000, stock=3, description="Blue")
    before = (await client.get(f"/products/{product.id}")).json()

    response = await client.patch(f"/products/{product.id}", json={"price_cents": 1500}, headers=auth_headers(staff))

    assert response.status_code == 200, response.text
    after = response.json()
    assert after["price_cents"] == 1500
    assert {k: v for k, v in after.items() if k not in {"price_cents", "updated_at"}} == {
        k: v for k, v in before.items() if k not in {"price_cents", "updated_at"}
    }
    assert after["updated_at"] > before["updated_at"]
    row = await stored(db, product.id)
    assert row is not None
    assert (row.price_cents, row.name, row.stock, row.description) == (1500, "Mug", 3, "Blue")


async def test_patch_every_field(
    client: httpx.AsyncClient, make_product: ProductMaker, staff: User, auth_headers: AuthHeaders
) -> None:
    product = await make_product()
    change = {"sku": "NEW-SKU-1", "name": "New", "description": "", "price_cents": 0, "stock": 0}

    response = await client.patch(f"/products/{product.id}", json=change, headers=auth_headers(staff))

    assert response.status_code == 200
    assert {k: response.json()[k] for k in change} == change


async def test_empty_patch_changes_nothing(
    client: httpx.AsyncClient, make_product: ProductMaker, staff: User, auth_headers: AuthHeaders
) -> None:
    product = await make_product()
    before = (await client.get(f"/products/{product.id}")).json()

    response = await client.patch(f"/products/{product.id}", json={}, headers=auth_headers(staff))

    assert response.status_code == 200
    assert response.json() == before


async def test_patch_to_an_existing_sku_is_409(
    client: httpx.AsyncClient, db: AsyncSession, make_product: ProductMaker, staff: User, auth_headers: AuthHeaders
) -> None:
    first, second = await make_product.batch(2)

    response = await client.patch(f"/products/{second.id}", json={"sku": first.sku}, headers=auth_headers(staff))

    assert response.status_code == 409
    assert response.json()["code"] == "sku_taken"
    row = await stored(db, second.id)
    assert row is not None
    assert row.sku != first.sku


async def test_patch_keeping_its_own_sku_is_fine(
    client: httpx.AsyncClient, make_product: ProductMaker, staff: User, auth_headers: AuthHeaders
) -> None:
    product = await make_product()

    response = await client.patch(
        f"/products/{product.id}", json={"sku": product.sku, "stock": 9}, headers=auth_headers(staff)
    )

    assert response.status_code == 200
    assert response.json()["stock"] == 9


@pytest.mark.parametrize(
    "change",
    [
        {"price_cents": -1},
        {"stock": -5},
        {"name": None},
        {"sku": None},
        {"is_active": "yes"},
        {"id": str(uuid.uuid4())},
        {"created_at": "2020-01-01T00:00:00Z"},
    ],
)
async def test_invalid_patch_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
    db: AsyncSession,
    make_product: ProductMaker,
    staff: User,
    auth_headers: AuthHeaders,
    change: dict[str, Any],
) -> None:
    product = await make_product(price_cents=100, stock=1)

    response = await client.patch(f"/products/{product.id}", json=change, headers=auth_headers(staff))

    assert response.status_code == 422
    row = await stored(db, product.id)
    assert row is not None
    assert (row.price_cents, row.stock, row.is_active) == (100, 1, True)


async def test_patch_missing_product_is_404(client: httpx.AsyncClient, staff: User, auth_headers: AuthHeaders) -> None:
    response = await client.patch(f"/products/{uuid.uuid4()}", json={"stock": 1}, headers=auth_headers(staff))

    assert response.status_code == 404


async def test_patch_needs_products_manage(
    client: httpx.AsyncClient, db: AsyncSession, make_product: ProductMaker, customer: User, auth_headers: AuthHeaders
) -> None:
    product = await make_product(stock=1)

    anonymous = await client.patch(f"/products/{product.id}", json={"stock": 99})
    as_customer = await client.patch(f"/products/{product.id}", json={"stock": 99}, headers=auth_headers(customer))

    assert anonymous.status_code == 401
    assert as_customer.status_code == 403
    assert as_customer.json()["detail"] == "Permission required: products:manage"
    row = await stored(db, product.id)
    assert row is not None
    assert row.stock == 1


async def test_patch_is_active_true_unarchives(
    client: httpx.AsyncClient, make_product: ProductMaker, staff: User, auth_headers: AuthHeaders
) -> None:
    product = await make_product(is_active=False)

    response = await client.patch(f"/products/{product.id}", json={"is_active": True}, headers=auth_headers(staff))

    assert response.status_code == 200
    assert response.json()["is_active"] is True
    assert (await client.get(f"/products/{product.id}")).status_code == 200


# --- archive ----------------------------------------------------------------------------------------------------


async def test_delete_archives_and_keeps_the_row(
    client: httpx.AsyncClient, db: AsyncSession, make_product: ProductMaker, staff: User, auth_headers: AuthHeaders
) -> None:
    product = await make_product()

    response = await client.delete(f"/products/{product.id}", headers=auth_headers(staff))

    assert response.status_code == 204
    assert response.content == b""
    row = await stored(db, product.id)
    assert row is not None
    assert row.is_active is False
    assert (await client.get(f"/products/{product.id}")).status_code == 404
    assert (await client.get("/products")).json()["total"] == 0
    staff_view = await client.get(f"/products/{product.id}", headers=auth_headers(staff))
    assert staff_view.json()["is_active"] is False


async def test_delete_is_idempotent(
    client: httpx.AsyncClient, db: AsyncSession, make_product: ProductMaker, staff: User, auth_headers: AuthHeaders
) -> None:
    product = await make_product()
    await client.delete(f"/products/{product.id}", headers=auth_headers(staff))
    archived_at = (await client.get(f"/products/{product.id}", headers=auth_headers(staff))).json()["updated_at"]

    again = await client.delete(f"/products/{product.id}", headers=auth_headers(staff))

    assert again.status_code == 204
    after = (await client.get(f"/products/{product.id}", headers=auth_headers(staff))).json()
    assert after["updated_at"] == archived_at


async def test_delete_missing_product_is_404(client: httpx.AsyncClient, staff: User, auth_headers: AuthHeaders) -> None:
    assert (await client.delete(f"/products/{uuid.uuid4()}", headers=auth_headers(staff))).status_code == 404


async def test_delete_needs_products_manage(
    client: httpx.AsyncClient, db: AsyncSession, make_product: ProductMaker, customer: User, auth_headers: AuthHeaders
) -> None:
    product = await make_product()

    anonymous = await client.delete(f"/products/{product.id}")
    as_customer = await client.delete(f"/products/{product.id}", headers=auth_headers(customer))

    assert (anonymous.status_code, as_customer.status_code) == (401, 403)
    assert as_customer.json()["detail"] == "Permission required: products:manage"
    row = await stored(db, product.id)
    assert row is not None
    assert row.is_active is True


async def test_stock_check_constraint_is_the_last_line_of_defence(db: AsyncSession, make_product: ProductMaker) -> None:
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    product = await make_product(stock=1)

    with pytest.raises(IntegrityError, match="ck_products_stock_non_negative"):
        async with db.begin_nested():
            await db.execute(update(Product).where(Product.id == product.id).values(stock=Product.stock - 2))
