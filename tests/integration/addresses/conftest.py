"""Fixtures of the address tests."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from tests.support import AddressMaker, UserMaker


@pytest.fixture
def make_address(db: AsyncSession) -> AddressMaker:
    return AddressMaker(db)


@pytest.fixture
async def alice(make_user: UserMaker) -> User:
    return await make_user()


@pytest.fixture
async def bob(make_user: UserMaker) -> User:
    return await make_user()
