"""Fixtures of the accounts tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from tests.support import UserMaker


@pytest.fixture
async def make_committed_user(engine: AsyncEngine, committed_db: None) -> AsyncIterator[UserMaker]:
    """Like ``make_user``, but really committed, so ``committed_client``'s pooled connections see the users."""
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        yield UserMaker(session)
