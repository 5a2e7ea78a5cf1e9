"""``/addresses``: the caller's own address book."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from app.domain.addresses.models import Address
from app.domain.addresses.services import MAX_ADDRESSES_PER_USER
from app.testing.factories import AddressCreateFactory, AddressFactory
from tests.support import AddressMaker, AuthHeaders

ADDRESS_KEYS = {
    "id",
    "recipient_name",
    "line1",
    "line2",
    "city",
    "region",
    "postal_code",
    "country",
    "phone",
    "created_at",
}


def new_address(**overrides: Any) -> dict[str, Any]:
    body = {
        "recipient_name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "line2": "Flat 3",
        "city": "London",
        "region": "Greater London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
        "phone": "+44 20 7946 0958",
    }
    return body | overrides


async def stored(db: AsyncSession, address_id: str | uuid.UUID) -> Address | None:
    return (
        await db.execute(
            select(Address).where(Address.id == uuid.UUID(str(address_id))).execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def test_create_is_201_and_owned_by_the_caller(
    client: httpx.AsyncClient, db: AsyncSession, alice: User, auth_headers: AuthHeaders
) -> None:
    body = new_address()

    response = await client.post("/addresses", json=body, headers=auth_headers(alice))

    assert response.status_code == 201, response.text
    created = response.json()
    assert created.keys() == ADDRESS_KEYS
    assert {k: created[k] for k in body} == body
    assert created["created_at"].endswith("Z")
    row = await stored(db, created["id"])
    assert row is not None
    assert row.user_id == alice.id
    assert row.deleted_at is None


async def test_optional_fields_default_to_null(
    client: httpx.AsyncClient, alice: User, auth_headers: AuthHeaders
) -> None:
    body = new_address()
    for optional in ("line2", "region", "phone"):
        del body[optional]

    response = await client.post("/addresses", json=body, headers=auth_headers(alice))

    assert response.status_code == 201
    assert (response.json()["line2"], response.json()["region"], response.json()["phone"]) == (None, None, None)


async def test_create_accepts_a_factory_body(client: httpx.AsyncClient, alice: User, auth_headers: AuthHeaders) -> None:
    for _ in range(5):
        body = msgspec.to_builtins(AddressCreateFactory.build())

        response = await client.post("/addresses", json=body, headers=auth_headers(alice))

        assert response.status_code == 201, (body, response.text)


async def test_list_is_own_newest_first_as_an_array(
    client: httpx.AsyncClient, alice: User, bob: User, make_address: AddressMaker, auth_headers: AuthHeaders
) -> None:
    older = await make_address(alice)
    await make_address(bob)
    newer = await make_address(alice)

    response = await client.get("/addresses", headers=auth_headers(alice))

    assert response.status_code == 200
    assert isinstance(response.json(), list)
    assert [a["id"] for a in response.json()] == [str(newer.id), str(older.id)]
    assert all(a.keys() == ADDRESS_KEYS for a in response.json())


async def test_list_is_empty_for_a_new_user(client: httpx.AsyncClient, alice: User, auth_headers: AuthHeaders) -> None:
    response = await client.get("/addresses", headers=auth_headers(alice))

    assert (response.status_code, response.json()) == (200, [])


async def test_get_own_address(
    client: httpx.AsyncClient, alice: User, make_address: AddressMaker, auth_headers: AuthHeaders
) -> None:
    address = await make_address(alice, country="DE", city="Berlin")

    response = await client.get(f"/addresses/{address.id}", headers=auth_headers(alice))

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["country"], response.json()["city"]) == (
        str(address.id),
        "DE",
        "Berlin",
    )


async def test_get_missing_address_is_404(client: httpx.AsyncClient, alice: User, auth_headers: AuthHeaders) -> None:
    response = await client.get(f"/addresses/{uuid.uuid4()}", headers=auth_headers(alice))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, db: AsyncSession, alice: User, make_address: AddressMaker, auth_headers: AuthHeaders
) -> None:
    address = await make_address(alice, phone="+1 555 0100", line2="Apt 4")
    before = (await client.get(f"/addresses/{address.id}", headers=auth_headers(alice))).json()

    response = await client.patch(f"/addresses/{address.id}", json={"city": "Springfield"}, headers=auth_headers(alice))

    assert response.status_code == 200, response.text
    assert response.json() == before | {"city": "Springfield"}
    row = await stored(db, address.id)
    assert row is not None
    assert (row.city, row.phone, row.line2) == ("Springfield", "+1 555 0100", "Apt 4")


async def test_patch_null_clears_an_optional_field(
    client: httpx.AsyncClient, alice: User, make_address: AddressMaker, auth_headers: AuthHeaders
) -> None:
    address = await make_address(alice, phone="+1 555 0100", region="IL")

    response = await client.patch(f"/addresses/{address.id}", json={"phone": None}, headers=auth_headers(alice))

    assert response.status_code == 200
    assert (response.json()["phone"], response.json()["region"]) == (None, "IL")


@pytest.mark.parametrize(
    "change",
    [
        {"city": None},
        {"recipient_name": ""},
        {"country": "XX"},
        {"country": "gb"},
        {"user_id": str(uuid.uuid4())},
        {"deleted_at": None},
    ],
)
async def test_invalid_patch_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
    db: AsyncSession,
    alice: User,
    make_address: AddressMaker,
    auth_headers: AuthHeaders,
    change: dict[str, Any],
) -> None:
    address = await make_address(alice, city="Paris", country="FR", recipient_name="Marie")

    response = await client.patch(f"/addresses/{address.id}", json=change, headers=auth_headers(alice))

    assert response.status_code == 422
    row = await stored(db, address.id)
    assert row is not None
    assert (row.city, row.country, row.recipient_name, row.user_id) == ("Paris", "FR", "Marie", alice.id)


async def test_delete_hides_the_address_but_keeps_the_row(
    client: httpx.AsyncClient, db: AsyncSession, alice: User, make_address: AddressMaker, auth_headers: AuthHeaders
) -> None:
    address = await make_address(alice)

    response = await client.delete(f"/addresses/{address.id}", headers=auth_headers(alice))

    assert response.status_code == 204
    assert (await client.get(f"/addresses/{address.id}", headers=auth_headers(alice))).status_code == 404
    assert (await client.get("/addresses", headers=auth_headers(alice))).json() == []
    row = await stored(db, address.id)
    assert row is not None
    assert row.deleted_at is not None


async def test_deleted_address_cannot_be_changed_or_deleted_again(
    client: httpx.AsyncClient, alice: User, make_address: AddressMaker, auth_headers: AuthHeaders
) -> None:
    address = await make_address(alice)
    await client.delete(f"/addresses/{address.id}", headers=auth_headers(alice))

    patched = await client.patch(f"/addresses/{address.id}", json={"city": "X"}, headers=auth_headers(alice))
    deleted_again = await client.delete(f"/addresses/{address.id}", headers=auth_headers(alice))

    assert (patched.status_code, deleted_again.status_code) == (404, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/addresses"),
        ("POST", "/addresses"),
        ("GET", f"/addresses/{uuid.uuid4()}"),
        ("PATCH", f"/addresses/{uuid.uuid4()}"),
        ("DELETE", f"/addresses/{uuid.uuid4()}"),
    ],
)
async def test_anonymous_callers_get_401(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path, json=new_address() if method in {"POST", "PATCH"} else None)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("country", ["XX", "USA", "u1", "us", "", "U", "UK", "XK", "EU", None, 12])
async def test_invalid_country_is_422_on_the_country_field(
    client: httpx.AsyncClient, db: AsyncSession, alice: User, auth_headers: AuthHeaders, country: Any
) -> None:
    response = await client.post("/addresses", json=new_address(country=country), headers=auth_headers(alice))

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    assert [e["field"] for e in response.json()["errors"]] == ["country"]
    assert (await db.scalar(select(Address.id).where(Address.user_id == alice.id))) is None


@pytest.mark.parametrize("country", ["US", "GB", "DE", "JP", "BR", "AX", "SS", "BQ", "ZW"])
async def test_assigned_country_codes_are_accepted(
    client: httpx.AsyncClient, alice: User, auth_headers: AuthHeaders, country: str
) -> None:
    response = await client.post("/addresses", json=new_address(country=country), headers=auth_headers(alice))

    assert response.status_code == 201
    assert response.json()["country"] == country


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"recipient_name": ""}, "recipient_name"),
        ({"recipient_name": "  "}, "recipient_name"),
        ({"recipient_name": "r" * 201}, "recipient_name"),
        ({"line1": ""}, "line1"),
        ({"line1": "l" * 201}, "line1"),
        ({"line1": "bad\x00byte"}, "line1"),
        ({"line2": "l" * 201}, "line2"),
        ({"city": ""}, "city"),
        ({"city": "c" * 101}, "city"),
        ({"region": "r" * 101}, "region"),
        ({"postal_code": ""}, "postal_code"),
        ({"postal_code": "1" * 21}, "postal_code"),
        ({"phone": "call me"}, "phone"),
        ({"phone": ""}, "phone"),
        ({"phone": "+1" + "2" * 32}, "phone"),
        ({"phone": "555-"}, "phone"),
    ],
)
async def test_invalid_field_is_422_naming_it(
    client: httpx.AsyncClient, alice: User, auth_headers: AuthHeaders, overrides: dict[str, Any], field: str
) -> None:
    response = await client.post("/addresses", json=new_address(**overrides), headers=auth_headers(alice))

    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize("missing", ["recipient_name", "line1", "city", "postal_code", "country"])
async def test_missing_required_field_is_422(
    client: httpx.AsyncClient, alice: User, auth_headers: AuthHeaders, missing: str
) -> None:
    body = new_address()
    del body[missing]

    response = await client.post("/addresses", json=body, headers=auth_headers(alice))

    assert response.status_code == 422


async def test_unknown_field_is_422(client: httpx.AsyncClient, alice: User, auth_headers: AuthHeaders) -> None:
    response = await client.post("/addresses", json=new_address(user_id=str(uuid.uuid4())), headers=auth_headers(alice))

    assert response.status_code == 422
    assert "user_id" in response.json()["detail"]


@pytest.mark.parametrize("phone", ["+1 (555) 010-0199", "555 0100", "+442079460958", "(030) 1234567"])
async def test_common_phone_formats_are_accepted(
    client: httpx.AsyncClient, alice: User, auth_headers: AuthHeaders, phone: str
) -> None:
    response = await client.post("/addresses", json=new_address(phone=phone), headers=auth_headers(alice))

    assert response.status_code == 201


async def test_address_book_size_is_bounded(
    client: httpx.AsyncClient, db: AsyncSession, alice: User, auth_headers: AuthHeaders
) -> None:
    db.add_all([AddressFactory.build(user_id=alice.id) for _ in range(MAX_ADDRESSES_PER_USER)])
    await db.commit()

    response = await client.post("/addresses", json=new_address(), headers=auth_headers(alice))

    assert response.status_code == 422
    assert response.json()["code"] == "address_limit_reached"
    assert len((await client.get("/addresses", headers=auth_headers(alice))).json()) == MAX_ADDRESSES_PER_USER


async def test_deleted_addresses_do_not_count_towards_the_bound(
    client: httpx.AsyncClient, db: AsyncSession, alice: User, auth_headers: AuthHeaders
) -> None:
    from datetime import UTC, datetime

    db.add_all(
        [AddressFactory.build(user_id=alice.id, deleted_at=datetime.now(UTC)) for _ in range(MAX_ADDRESSES_PER_USER)]
    )
    await db.commit()

    response = await client.post("/addresses", json=new_address(), headers=auth_headers(alice))

    assert response.status_code == 201
