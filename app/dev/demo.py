"""Demo accounts for development: created (or reset) on every start of the dev command."""

from __future__ import annotations

from typing import Final, NamedTuple

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig

from app.core.security import PasswordHashing
from app.db.session import session_scope
from app.domain.accounts.services import UserService

__all__ = ("DEMO_USERS", "DemoUser", "ensure_demo_users")


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
