"""Fixtures of the property tests: a small world to send request bodies into, restored after every example.

Hypothesis runs many examples inside one test (one set of function-scoped fixtures), and the app commits for real,
so after each example the tables are put back to the world as it was made (a copy taken once, restored in one round
trip): examples never see each other's rows, and a replayed example meets the same database as the first time.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.domain.accounts.models import User
from app.domain.addresses.models import Address
from app.domain.catalog.models import Product
from app.domain.orders.state_machine import OrderStatus
from app.testing.factories import AddressFactory, ProductFactory, build_order_graph, create_user
from tests.conftest import TableCleaner
from tests.support import AuthHeaders

# The property tests keep the world's copies in temporary tables of one pooled connection: session state, which a
# transaction-pooling proxy does not keep. They check request validation, not the data path, so the pooled CI run
# (TEST_DB_POOL_MODE=transaction, .ci/with-pgbouncer) leaves them to the two session-mode runs.
collect_ignore_glob = ["test_*.py"] if os.environ.get("TEST_DB_POOL_MODE") == "transaction" else []


#: Every table a request can write; a rejected request must leave all of them exactly as they were.
_TABLES = (
    "users",
    "user_roles",
    "refresh_token_families",
    "refresh_tokens",
    "products",
    "addresses",
    "orders",
    "order_items",
    "order_events",
    "idempotency_keys",
)
_FINGERPRINT = text(
    "SELECT "
    + ", ".join(f"(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {t} t)" for t in _TABLES)
)


@dataclass(frozen=True)
class World:
    """Actors and rows the bodies refer to: a customer with an address and a pending order, a catalog, staff."""

    customer: User
    customer_headers: dict[str, str]
    address: Address
    products: list[Product]
    order_id: str
    staff_headers: dict[str, str]
    admin_headers: dict[str, str]
    other_user: User


@pytest.fixture
async def world(db: AsyncSession, auth_headers: AuthHeaders) -> World:
    """Made with the public factories, in one commit (it is set up again for every rule and example batch)."""
    customer = await create_user(db)
    address = AddressFactory.build(user_id=customer.id)
    # Plenty of stock, so any valid order of up to 100 units per line can be placed in every example.
    products = [ProductFactory.build(stock=1_000_000) for _ in range(8)]
    db.add_all([address, *products])
    await db.flush()
    order = build_order_graph(customer.id, address, [(products[0], 1)], status=OrderStatus.PENDING)
    db.add_all(order.models())
    world = World(
        customer=customer,
        customer_headers=auth_headers(customer),
        address=address,
        products=products,
        order_id=str(order.order.id),
        staff_headers=auth_headers(await create_user(db, roles=["staff"])),
        admin_headers=auth_headers(await create_user(db, roles=["admin"])),
        other_user=await create_user(db),
    )
    await db.commit()
    return world


@pytest.fixture
async def example(
    world: World, engine: AsyncEngine, clean_tables: TableCleaner
) -> AsyncIterator[Callable[[], AbstractAsyncContextManager[None]]]:
    """``async with example():`` runs one hypothesis example; afterwards every table holds the world again."""
    tables = clean_tables.tables
    snapshot = "; ".join(f'CREATE TEMPORARY TABLE "world_{t}" AS SELECT * FROM "{t}"' for t in tables)
    # The derived tables (order counts) are emptied after the rows they follow and rebuilt by inserting those rows.
    restore = "; ".join(
        [f'DELETE FROM "{t}"' for t in (*reversed(tables), *clean_tables.derived)]
        + [f'INSERT INTO "{t}" OVERRIDING SYSTEM VALUE SELECT * FROM "world_{t}"' for t in tables]
    )
    async with engine.connect() as conn:
        # asyncpg's simple query protocol, outside any transaction: each round trip commits, the copies are this
        # connection's temporary tables.
        driver: Any = (await conn.get_raw_connection()).driver_connection
        await driver.execute(snapshot)

        @asynccontextmanager
        async def restored() -> AsyncIterator[None]:
            try:
                yield
            finally:
                await driver.execute(restore)

        try:
            yield restored
        finally:
            # The connection goes back to the pool: its temporary tables must not outlive the test.
            await driver.execute("DISCARD TEMP")


@pytest.fixture
def fingerprint(db_connection: Any) -> Callable[[], Any]:
    """A digest of every row of every table a request can write (the test database holds only this test's rows)."""

    async def take() -> tuple[str, ...]:
        return tuple((await db_connection.execute(_FINGERPRINT)).one())

    return take
