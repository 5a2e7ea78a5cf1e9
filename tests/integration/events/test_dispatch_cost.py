"""A dispatch round costs the same statements and one email job, however many events it carries."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.events.outbox import OutboxDispatcher
from tests.integration.orders.conftest import Shopper
from tests.support import AddressMaker, AuthHeaders, ProductMaker, UserMaker, count_driver_statements


class EmailQueue:
    """Stands in for the SAQ queue: remembers the batches the dispatcher handed over for emailing."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def __call__(self, row_ids: Sequence[int]) -> None:
        self.batches.append(list(row_ids))


async def test_a_round_publishes_a_burst_in_six_statements_and_one_email_job(
    engine: AsyncEngine, redis: Redis, committed_client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        user = await UserMaker(session)()
        shopper = Shopper(user, auth_headers(user), await AddressMaker(session)(user))
        product = await ProductMaker(session)(stock=100)
    for _ in range(30):
        placed = await committed_client.post("/orders", json=shopper.order((product, 1)), headers=shopper.headers)
        assert placed.status_code == 201, placed.text
    emails = EmailQueue()

    with count_driver_statements(engine) as statements:
        published = await OutboxDispatcher(engine, redis, emails).dispatch(look_again=False)

    assert published == 30
    assert len(emails.batches) == 1
    assert len(emails.batches[0]) == 30
    # begin and lock (a transaction kept open on a second connection); leftovers of a failed round (none); assign
    # ids; mark dispatched; end of the lock's transaction
    assert len(statements) == 6, statements
    async with engine.connect() as connection:
        pending = await connection.scalar(text("SELECT count(*) FROM order_events WHERE dispatched_at IS NULL"))
    assert pending == 0
