"""Demo accounts and demo data for development.

The accounts are created (or reset) on every start of the dev command; the data (a small catalog, and orders of the
demo customer) only on the first start, by the same seeding code as ``litestar seed``.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import exists, select

from app.core.security import PasswordHashing
from app.db.session import session_scope
from app.domain.accounts.models import User
from app.domain.accounts.services import UserService
from app.domain.catalog.models import Product
from app.testing.seed import Seeder, SeedOptions, SeedReport

__all__ = ("DEMO_SEED", "DEMO_USERS", "DemoUser", "ensure_demo_data", "ensure_demo_users")


class DemoUser(NamedTuple):
    email: str
    password: str
    role: str
    full_name: str


DEMO_USERS: Final = (
    DemoUser("admin@example.com", "admin-demo-password", "admin", "Ada Admin"),
    DemoUser("staff@example.com", "staff-demo-password", "staff", "Sam Staff"),
    DemoUser("customer@example.com", "customer-demo-password", "customer", "Casey Customer"),
)
_DEMO_CUSTOMER: Final = DEMO_USERS[2]
#: The demo data is the same on every machine (give or take the day it was made).
DEMO_SEED: Final = 2026


async def ensure_demo_users(alchemy: SQLAlchemyAsyncConfig) -> None:
    """Idempotent: existing demo users get their documented password and role back."""
    passwords = PasswordHashing()
    async with session_scope(alchemy) as session:
        users = UserService(session=session)
        for demo in DEMO_USERS:
            await users.create_with_roles(
                email=demo.email,
                password=demo.password,
                roles=[demo.role],
                passwords=passwords,
                full_name=demo.full_name,
            )


async def ensure_demo_data(alchemy: SQLAlchemyAsyncConfig, *, payment_ttl: int) -> SeedReport | None:
    """On the first start (no products yet): 25 products, and addresses and 10 orders for the demo customer.

    ``payment_ttl`` is ``ORDER_PAYMENT_TTL``: a demo order that would be pending past it is seeded as cancelled for
    payment timeout, so the worker starting next does not cancel (and email) the demo history.

    Returns what was created, or None when the database already had products. Run :func:`ensure_demo_users` first.
    """
    async with alchemy.get_engine().connect() as connection:
        async with connection.begin():
            if await connection.scalar(select(exists().select_from(Product))):
                return None
            customer = await connection.scalar(select(User.id).where(User.email == _DEMO_CUSTOMER.email))
        if customer is None:
            raise LookupError(f"{_DEMO_CUSTOMER.email} does not exist; run ensure_demo_users first")
        options = SeedOptions(products=25, orders=10, seed=DEMO_SEED, customers=(customer,), payment_ttl=payment_ttl)
        return await Seeder(options).run(connection)
