"""``DB_POOL_MODE=transaction`` leaves no named prepared statement on a server connection; ``session`` keeps them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text

from app.config import Settings
from app.db.pooling import PoolMode
from app.db.prepared import DirectPool, Prepared, transaction

_STOCK = Prepared(text("SELECT count(*) FROM products WHERE stock > :least"))
_NAMED = Prepared(text("SELECT count(*) FROM pg_prepared_statements"))


@asynccontextmanager
async def _one_connection_pool(settings: Settings, mode: PoolMode) -> AsyncIterator[DirectPool]:
    assert settings.database_url is not None
    pool = DirectPool(settings.database_url, size=1, pool_mode=mode)
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()


async def test_transaction_mode_runs_every_statement_unnamed(settings: Settings) -> None:
    async with _one_connection_pool(settings, "transaction") as pool:
        for least in range(3):
            await _STOCK.fetchval(pool, least=least)
        async with transaction(pool) as tx:
            await _STOCK.fetchval(tx, least=0)
            # Asked in the same transaction, so on the same server connection even behind a pooler.
            named = await _NAMED.fetchval(tx)

    assert named == 0


async def test_session_mode_keeps_named_statements(settings: Settings) -> None:
    if settings.db_pool_mode != "session":
        pytest.skip("named statements do not survive a transaction-pooling proxy: that is what the other mode is for")
    async with _one_connection_pool(settings, "session") as pool, transaction(pool) as tx:
        await _STOCK.fetchval(tx, least=0)
        named = await _NAMED.fetchval(tx)

    assert named >= 1


def test_pool_modes_are_the_settings_choices() -> None:
    modes: tuple[PoolMode, ...] = ("session", "transaction")
    assert tuple(Settings.from_env({"DB_POOL_MODE": mode}).db_pool_mode for mode in modes) == modes
