"""Races decided by the database, with real commits on separate connections."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.catalog.models import Product
from tests.support import AuthHeaders, UserMaker


async def test_concurrent_creates_of_one_sku_give_one_201_and_one_409(
    committed_client: httpx.AsyncClient, make_committed_user: UserMaker, auth_headers: AuthHeaders, engine: AsyncEngine
) -> None:
    staff = await make_committed_user(roles=("staff",))
    headers = auth_headers(staff)
    body = {"sku": "RACE-0001", "name": "Contested", "price_cents": 100, "stock": 1}

    responses = await asyncio.gather(
        *(committed_client.post("/products", json=body, headers=headers) for _ in range(2))
    )

    assert sorted(r.status_code for r in responses) == [201, 409]
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.json()["code"] == "sku_taken"
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(Product).where(Product.sku == "RACE-0001")) == 1


async def test_concurrent_sku_changes_to_one_value_give_one_200_and_one_409(
    committed_client: httpx.AsyncClient, make_committed_user: UserMaker, auth_headers: AuthHeaders
) -> None:
    staff = await make_committed_user(roles=("staff",))
    headers = auth_headers(staff)
    ids = []
    for n in range(2):
        created = await committed_client.post(
            "/products", json={"sku": f"RACE-P{n}", "name": "P", "price_cents": 1, "stock": 1}, headers=headers
        )
        ids.append(created.json()["id"])

    responses = await asyncio.gather(
        *(committed_client.patch(f"/products/{pid}", json={"sku": "RACE-TARGET"}, headers=headers) for pid in ids)
    )

    assert sorted(r.status_code for r in responses) == [200, 409]
