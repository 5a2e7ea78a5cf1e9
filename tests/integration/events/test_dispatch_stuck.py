"""A dispatch round that cannot publish must not keep holding the outbox lock (every other dispatcher waits on it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.events.outbox import LOCK_KEY, OutboxDispatcher
from tests.integration.orders.conftest import Shopper
from tests.support import AddressMaker, AuthHeaders, ProductMaker, UserMaker


async def _never_returns(_: Sequence[int]) -> None:
    await asyncio.Event().wait()


async def test_a_round_stuck_publishing_gives_up_and_leaves_the_lock_free(
    engine: AsyncEngine,
    redis: Redis,
    committed_client: httpx.AsyncClient,
    auth_headers: AuthHeaders,
) -> None:
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        user = await UserMaker(session)()
        shopper = Shopper(user, auth_headers(user), await AddressMaker(session)(user))
        product = await ProductMaker(session)(stock=5)
    placed = await committed_client.post("/orders", json=shopper.order((product, 1)), headers=shopper.headers)
    assert placed.status_code == 201, placed.text

    # The email enqueue never returns: the round gives up after its publish timeout, and lets go of the lock.
    with pytest.raises(TimeoutError):
        await OutboxDispatcher(engine, redis, _never_returns, publish_timeout=0.3).dispatch()

    assert await _lock_frees_up(engine)
    async with engine.connect() as connection:
        pending = await connection.scalar(text("SELECT count(*) FROM order_events WHERE dispatched_at IS NULL"))
    assert pending == 1  # nothing marked: the next round publishes it


async def _lock_frees_up(engine: AsyncEngine, *, within: float = 10.0) -> bool:
    """Whether the outbox lock can be taken within ``within`` seconds.

    The round closed the connection whose transaction held the lock; the server ends that transaction once it sees
    the socket close, an instant later directly and one hop later behind PgBouncer (which then closes its server
    connection), so the first look may come too early.
    """
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with engine.begin() as connection:
            if await connection.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}):
                return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)


async def test_polls_cancelled_at_any_point_leave_no_lock_on_the_outbox(
    engine: AsyncEngine, redis: Redis, committed_db: None
) -> None:
    """A poll cancelled mid-statement (the worker stopping) once kept order_events locked, so TRUNCATE waited."""
    dispatcher = OutboxDispatcher(engine, redis, _never_returns)
    for steps in range(40):  # cancel after 0, 1, 2, ... turns of the loop: every point of the exchange
        poll = asyncio.create_task(dispatcher.any_pending())
        for _ in range(steps):
            await asyncio.sleep(0)
        poll.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poll

    async with engine.begin() as connection:
        await connection.execute(text("SET LOCAL lock_timeout = '2s'"))
        await connection.execute(text("LOCK TABLE order_events IN ACCESS EXCLUSIVE MODE"))
