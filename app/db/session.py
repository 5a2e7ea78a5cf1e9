"""Sessions outside a request (CLI commands, background jobs): explicit scope, explicit commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("session_scope",)


@asynccontextmanager
async def session_scope(alchemy: SQLAlchemyAsyncConfig) -> AsyncIterator[AsyncSession]:
    """A session for one unit of work. It never commits by itself: callers (services) commit what they mean to."""
    session_maker = alchemy.create_session_maker()
    async with session_maker() as session:
        yield session
