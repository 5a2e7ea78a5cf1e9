"""Helpers shared by the tests: making users and their auth headers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Litestar
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import TokenCodec
from app.domain.accounts.models import User, user_roles
from app.testing.factories import DEFAULT_PASSWORD, UserFactory, password_hash_for


class UserMaker:
    """Persists factory-built users with roles, in the given session (committed)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def __call__(
        self, *, roles: Sequence[str] = ("customer",), password: str = DEFAULT_PASSWORD, **overrides: Any
    ) -> User:
        user = UserFactory.build(password_hash=password_hash_for(password), **overrides)
        self.session.add(user)
        await self.session.flush()
        if roles:
            await self.session.execute(insert(user_roles), [{"user_id": user.id, "role_name": r} for r in roles])
        await self.session.commit()
        return user


class AuthHeaders:
    """``Authorization`` headers carrying a valid access token for a user, signed with the app's settings."""

    def __init__(self, app: Litestar) -> None:
        self.codec: TokenCodec = app.state.tokens

    def __call__(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.codec.issue(user.id)}"}
