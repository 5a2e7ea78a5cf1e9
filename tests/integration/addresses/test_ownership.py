"""Another user's address is indistinguishable from a missing one, and nothing about it can be changed (BOLA)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from app.domain.addresses.models import Address
from tests.support import AddressMaker, AuthHeaders


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


async def snapshot(db: AsyncSession, address_id: uuid.UUID) -> dict[str, Any]:
    row = (
        await db.execute(select(Address).where(Address.id == address_id).execution_options(populate_existing=True))
    ).scalar_one()
    return {column.key: getattr(row, column.key) for column in Address.__mapper__.column_attrs}


async def test_someone_elses_address_is_404_like_a_missing_one(
    client: httpx.AsyncClient, alice: User, bob: User, make_address: AddressMaker, auth_headers: AuthHeaders
) -> None:
    bobs = await make_address(bob)

    foreign = await client.get(f"/addresses/{bobs.id}", headers=auth_headers(alice))
    missing = await client.get(f"/addresses/{uuid.uuid4()}", headers=auth_headers(alice))

    assert foreign.status_code == missing.status_code == 404
    assert without_request_id(foreign.json()) == without_request_id(missing.json())


async def test_someone_elses_address_cannot_be_patched(
    client: httpx.AsyncClient,
    db: AsyncSession,
    alice: User,
    bob: User,
    make_address: AddressMaker,
    auth_headers: AuthHeaders,
) -> None:
    bobs = await make_address(bob)
    before = await snapshot(db, bobs.id)

    response = await client.patch(
        f"/addresses/{bobs.id}", json={"city": "Hijacked", "recipient_name": "Alice"}, headers=auth_headers(alice)
    )

    assert response.status_code == 404
    assert await snapshot(db, bobs.id) == before


async def test_someone_elses_address_cannot_be_deleted(
    client: httpx.AsyncClient,
    db: AsyncSession,
    alice: User,
    bob: User,
    make_address: AddressMaker,
    auth_headers: AuthHeaders,
) -> None:
    bobs = await make_address(bob)
    before = await snapshot(db, bobs.id)

    response = await client.delete(f"/addresses/{bobs.id}", headers=auth_headers(alice))

    assert response.status_code == 404
    assert await snapshot(db, bobs.id) == before
    assert [a["id"] for a in (await client.get("/addresses", headers=auth_headers(bob))).json()] == [str(bobs.id)]


async def test_list_never_shows_someone_elses_addresses(
    client: httpx.AsyncClient, alice: User, bob: User, make_address: AddressMaker, auth_headers: AuthHeaders
) -> None:
    await make_address(bob)

    assert (await client.get("/addresses", headers=auth_headers(alice))).json() == []
