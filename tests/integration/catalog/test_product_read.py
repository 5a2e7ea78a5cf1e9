"""``GET /products/{id}``: public for active products, archived ones only for ``products:manage``."""

from __future__ import annotations

import uuid

import httpx
import pytest

from app.domain.accounts.models import User
from tests.support import AuthHeaders, ProductMaker, UserMaker


async def test_active_product_is_public(client: httpx.AsyncClient, make_product: ProductMaker) -> None:
    product = await make_product(sku="MUG-1", name="Mug", description="Blue", price_cents=1299, stock=7)

    response = await client.get(f"/products/{product.id}")

    assert response.status_code == 200
    body = response.json()
    assert body | {"created_at": None, "updated_at": None} == {
        "id": str(product.id),
        "sku": "MUG-1",
        "name": "Mug",
        "description": "Blue",
        "price_cents": 1299,
        "stock": 7,
        "is_active": True,
        "created_at": None,
        "updated_at": None,
    }


async def test_missing_product_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/products/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "not_found"


async def test_archived_product_is_404_for_anonymous_callers(
    client: httpx.AsyncClient, make_product: ProductMaker
) -> None:
    product = await make_product(is_active=False)

    response = await client.get(f"/products/{product.id}")

    assert response.status_code == 404
    missing = await client.get(f"/products/{uuid.uuid4()}")
    assert {k: v for k, v in response.json().items() if k != "request_id"} == {
        k: v for k, v in missing.json().items() if k != "request_id"
    }


async def test_archived_product_is_404_for_customers(
    client: httpx.AsyncClient, make_product: ProductMaker, customer: User, auth_headers: AuthHeaders
) -> None:
    product = await make_product(is_active=False)

    response = await client.get(f"/products/{product.id}", headers=auth_headers(customer))

    assert response.status_code == 404


@pytest.mark.parametrize("role", ["staff", "admin"])
async def test_archived_product_is_visible_with_products_manage(
    client: httpx.AsyncClient, make_product: ProductMaker, make_user: UserMaker, auth_headers: AuthHeaders, role: str
) -> None:
    product = await make_product(is_active=False)
    user = await make_user(roles=(role,))

    response = await client.get(f"/products/{product.id}", headers=auth_headers(user))

    assert response.status_code == 200
    assert response.json()["is_active"] is False


async def test_invalid_token_is_ignored_for_an_active_product(
    client: httpx.AsyncClient, make_product: ProductMaker
) -> None:
    product = await make_product()

    response = await client.get(f"/products/{product.id}", headers={"Authorization": "Bearer garbage"})

    assert response.status_code == 200


async def test_invalid_token_is_401_when_it_would_decide_the_answer(
    client: httpx.AsyncClient, make_product: ProductMaker
) -> None:
    archived = await make_product(is_active=False)
    headers = {"Authorization": "Bearer garbage"}

    for_archived = await client.get(f"/products/{archived.id}", headers=headers)
    for_missing = await client.get(f"/products/{uuid.uuid4()}", headers=headers)

    # Both 401 alike: a bad token cannot tell an archived product from a missing one.
    assert (for_archived.status_code, for_missing.status_code) == (401, 401)
    assert for_archived.headers["www-authenticate"].startswith("Bearer")
    assert for_archived.json()["code"] == for_missing.json()["code"] == "invalid_token"


async def test_deactivated_staff_token_is_401_for_an_archived_product(
    client: httpx.AsyncClient, make_product: ProductMaker, make_user: UserMaker, auth_headers: AuthHeaders
) -> None:
    product = await make_product(is_active=False)
    former_staff = await make_user(roles=("staff",), is_active=False)

    response = await client.get(f"/products/{product.id}", headers=auth_headers(former_staff))

    assert response.status_code == 401


async def test_non_bearer_authorization_counts_as_anonymous(
    client: httpx.AsyncClient, make_product: ProductMaker
) -> None:
    product = await make_product(is_active=False)

    response = await client.get(f"/products/{product.id}", headers={"Authorization": "Basic dXNlcjpwYXNz"})

    assert response.status_code == 404


async def test_malformed_id_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/products/not-a-uuid")).status_code == 404
