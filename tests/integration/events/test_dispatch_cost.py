"""A dispatch round costs the same statements and one email job, however many events it carries."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.events.outbox import OutboxDispatcher
from tests.integration.orders.conftest import Shopper
from tests.support import AddressMaker, AuthHeaders, ProductMaker, UserMaker


class EmailQueue:
    """Stands in for the SAQ queue: remembers the batches the dispatcher handed over for emailing."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def __call__(self, row_ids: Sequence[int]) -> None:
        self.batches.append(list(row_ids))


#: asyncpg's own queries when a connection first meets a type (once per connection, not per round).
_INTROSPECTION = re.compile(r"typeinfo_tree|set_config\('jit'|current_setting\('jit'\)")


@contextmanager
def driver_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements run on the asyncpg connections the engine hands out meanwhile (the dispatcher's own SQL)."""
    statements: list[str] = []
    drivers: list[Any] = []

    def log(record: Any) -> None:
        if not _INTROSPECTION.search(record.query):
            statements.append(record.query)

    def on_checkout(_dbapi: Any, connection_record: Any, _proxy: Any) -> None:
        driver = connection_record.driver_connection
        driver.add_query_logger(log)
        drivers.append(driver)

    event.listen(engine.sync_engine, "checkout", on_checkout)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "checkout", on_checkout)
        for driver in drivers:
            driver.remove_query_logger(log)


async def test_a_round_publishes_a_burst_in_five_statements_and_one_email_job(
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

    with driver_statements(engine) as statements:
        published = await OutboxDispatcher(engine, redis, emails).dispatch(look_again=False)

    assert published == 30
    assert len(emails.batches) == 1
    assert len(emails.batches[0]) == 30
    # lock; leftovers of a failed round (none); assign ids; mark dispatched; unlock
    assert len(statements) == 5, statements
    async with engine.connect() as connection:
        pending = await connection.scalar(text("SELECT count(*) FROM order_events WHERE dispatched_at IS NULL"))
    assert pending == 0
