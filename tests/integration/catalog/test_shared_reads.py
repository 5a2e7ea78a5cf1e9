"""Shared reads on the direct pool, against PostgreSQL: concurrent identical reads share runs, never stale ones."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.config import Settings
from app.db.prepared import DirectPool, Prepared
from app.domain.catalog.models import Product
from tests.support import ProductMaker

#: A read of one product's stock that stays in flight for a while (its snapshot is taken when it starts).
_SLOW_STOCK = Prepared(text("SELECT p.stock FROM products AS p, pg_sleep(1.5) WHERE p.id = CAST(:product_id AS uuid)"))


@pytest.fixture
async def pool(database_url: str, settings: Settings, committed_db: None) -> AsyncIterator[DirectPool]:
    direct = DirectPool(database_url, size=3, pool_mode=settings.db_pool_mode)
    await direct.open()
    yield direct
    await direct.close()


async def _wait_until_running(engine: AsyncEngine, *, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE state = 'active' AND query LIKE '%pg_sleep(1.5)%' AND pid <> pg_backend_pid()"
    )
    while True:
        async with engine.connect() as connection:
            if await connection.scalar(query):
                return
        assert asyncio.get_running_loop().time() < deadline, "the slow read never started"
        await asyncio.sleep(0.02)


async def test_a_read_asked_during_an_identical_read_sees_what_committed_before_it_asked(
    pool: DirectPool, engine: AsyncEngine
) -> None:
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        product_id: uuid.UUID = (await ProductMaker(session)(stock=5)).id
    first = asyncio.create_task(_SLOW_STOCK.fetch_shared(pool, product_id=product_id))
    await _wait_until_running(engine)  # its snapshot says 5
    async with engine.begin() as connection:
        await connection.execute(update(Product).where(Product.id == product_id).values(stock=4))

    assert not first.done()  # so the next read could have joined it, and must not
    second = await _SLOW_STOCK.fetch_shared(pool, product_id=product_id)

    assert [row["stock"] for row in await first] == [5]
    assert [row["stock"] for row in second] == [4]


async def test_identical_reads_asked_together_cost_two_runs_not_one_each(pool: DirectPool, engine: AsyncEngine) -> None:
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        product_id: uuid.UUID = (await ProductMaker(session)(stock=7)).id
    sequence = f"shared_reads_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE SEQUENCE {sequence}"))
    # Each run of this read draws the next number: the number a caller gets says which run answered it.
    counted = Prepared(
        text(f"SELECT p.stock, nextval('{sequence}') AS run FROM products AS p, pg_sleep(1.5) WHERE p.id = :product_id")
    )
    try:
        first = asyncio.create_task(counted.fetch_shared(pool, product_id=product_id))
        await _wait_until_running(engine)
        rest = await asyncio.gather(*(counted.fetch_shared(pool, product_id=product_id) for _ in range(20)))

        assert [(row["stock"], row["run"]) for row in await first] == [(7, 1)]
        assert {(row["stock"], row["run"]) for rows in rest for row in rows} == {(7, 2)}
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP SEQUENCE {sequence}"))
