"""Fixtures of the catalog tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.domain.accounts.models import User
from tests.support import ProductMaker, UserMaker


@pytest.fixture
def make_product(db: AsyncSession) -> ProductMaker:
    return ProductMaker(db)


@pytest.fixture
async def staff(make_user: UserMaker) -> User:
    return await make_user(roles=("staff",))


@pytest.fixture
async def customer(make_user: UserMaker) -> User:
    return await make_user(roles=("customer",))


@pytest.fixture
async def make_committed_user(engine: AsyncEngine, committed_db: None) -> AsyncIterator[UserMaker]:
    """Like ``make_user``, but really committed, so ``committed_client``'s pooled connections see the users."""
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        yield UserMaker(session)
