"""Order fixtures: a customer with an address, products, and committed variants for concurrency tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.domain.accounts.models import User
from app.domain.addresses.models import Address
from tests.support import AddressMaker, AuthHeaders, ProductMaker, UserMaker


@dataclass
class Shopper:
    """A customer ready to order: their user, auth headers and a shipping address."""

    user: User
    headers: dict[str, str]
    address: Address

    def order(self, *lines: tuple[Any, int]) -> dict[str, Any]:
        """An ``OrderCreate`` body for ``(product, quantity)`` lines."""
        return {
            "items": [{"product_id": str(p.id), "quantity": q} for p, q in lines],
            "shipping_address_id": str(self.address.id),
        }


@pytest.fixture
def make_product(db: AsyncSession) -> ProductMaker:
    return ProductMaker(db)


@pytest.fixture
def make_address(db: AsyncSession) -> AddressMaker:
    return AddressMaker(db)


async def _shopper(users: UserMaker, addresses: AddressMaker, auth: AuthHeaders, **user: Any) -> Shopper:
    customer = await users(**user)
    return Shopper(customer, auth(customer), await addresses(customer))


@pytest.fixture
async def shopper(make_user: UserMaker, make_address: AddressMaker, auth_headers: AuthHeaders) -> Shopper:
    return await _shopper(make_user, make_address, auth_headers)


@pytest.fixture
async def other_shopper(make_user: UserMaker, make_address: AddressMaker, auth_headers: AuthHeaders) -> Shopper:
    return await _shopper(make_user, make_address, auth_headers)


@pytest.fixture
async def staff_headers(make_user: UserMaker, auth_headers: AuthHeaders) -> dict[str, str]:
    return auth_headers(await make_user(roles=("staff",)))


@dataclass(frozen=True)
class Shop:
    """Two customers and a staff member on one client, with products to order: where the tests of who sees, counts
    and changes whose orders start."""

    client: httpx.AsyncClient
    shopper: Shopper
    other: Shopper
    staff: dict[str, str]  # a staff member's auth headers
    products: ProductMaker

    async def order_id(self, shopper: Shopper, *lines: tuple[Any, int]) -> str:
        """The id of the order ``shopper`` places for ``(product, quantity)`` lines."""
        order_id: str = (await place(self.client, shopper, *lines)).json()["id"]
        return order_id


@pytest.fixture
def shop(
    client: httpx.AsyncClient,
    shopper: Shopper,
    other_shopper: Shopper,
    staff_headers: dict[str, str],
    make_product: ProductMaker,
) -> Shop:
    return Shop(client, shopper, other_shopper, staff_headers, make_product)


@pytest.fixture
async def committed_session(engine: AsyncEngine, committed_db: None) -> AsyncIterator[AsyncSession]:
    """A session whose commits are real (other connections see them); tables are truncated afterwards."""
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        yield session


@pytest.fixture
async def committed_shopper(committed_session: AsyncSession, auth_headers: AuthHeaders) -> Shopper:
    return await _shopper(UserMaker(committed_session), AddressMaker(committed_session), auth_headers)


@pytest.fixture
async def committed_staff_headers(committed_session: AsyncSession, auth_headers: AuthHeaders) -> dict[str, str]:
    return auth_headers(await UserMaker(committed_session)(roles=("staff",)))


@pytest.fixture
def committed_products(committed_session: AsyncSession) -> ProductMaker:
    return ProductMaker(committed_session)


async def place(
    client: httpx.AsyncClient, shopper: Shopper, *lines: tuple[Any, int], headers: dict[str, str] | None = None
) -> httpx.Response:
    """``POST /orders`` as ``shopper`` for ``(product, quantity)`` lines."""
    return await client.post("/orders", json=shopper.order(*lines), headers={**shopper.headers, **(headers or {})})
