"""The payment timeout's rule, with real commits: exactly once across sweepers, and one winner against people."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.prepared import DirectPool
from app.domain.catalog.models import Product
from app.domain.orders.models import Order, OrderEvent, OrderItem
from app.domain.orders.services import OrderService
from app.events.payment_timeout import expire_unpaid_orders
from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker

TTL = 1800


@pytest.fixture
async def sweepers(settings: Settings, committed_db: None) -> AsyncIterator[list[OrderService]]:
    """Four sweepers, each on its own pool as four worker processes would be."""
    assert settings.database_url is not None
    pools = [DirectPool(settings.database_url, size=2, pool_mode=settings.db_pool_mode) for _ in range(4)]
    for pool in pools:
        await pool.open()
    yield [OrderService(async_sessionmaker(), direct=pool) for pool in pools]
    for pool in pools:
        await pool.close()


async def _overdue(session: AsyncSession, *order_ids: str) -> None:
    """Move the orders' placement back past the payment deadline."""
    await session.execute(
        text("UPDATE orders SET created_at = created_at - make_interval(secs => :by) WHERE id = ANY(:ids)"),
        {"by": TTL + 60, "ids": [uuid.UUID(i) for i in order_ids]},
    )
    await session.commit()


async def _stock_and_sold(session: AsyncSession, product: Product) -> tuple[int, int]:
    stock = await session.scalar(select(Product.stock).where(Product.id == product.id))
    sold = await session.scalar(
        select(func.coalesce(func.sum(OrderItem.quantity), 0))
        .join(Order, Order.id == OrderItem.order_id)
        .where(OrderItem.product_id == product.id, Order.status != "cancelled")
    )
    assert stock is not None
    assert sold is not None
    return stock, sold


async def _status_events(session: AsyncSession, order_id: str) -> list[tuple[str, str | None]]:
    rows = await session.execute(
        select(OrderEvent.status, OrderEvent.reason)
        .where(OrderEvent.order_id == uuid.UUID(order_id), OrderEvent.type == "order_status_changed")
        .order_by(OrderEvent.id)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


@dataclass(frozen=True)
class Sweep:
    """What each test here works with: the API, a customer who orders through it, products, a session whose commits
    other connections see (to age orders and read the outcome) and the four sweepers."""

    client: httpx.AsyncClient
    shopper: Shopper
    products: ProductMaker
    session: AsyncSession
    sweepers: list[OrderService]

    async def place(self, *lines: tuple[Product, int]) -> str:
        """The id of the order the customer places for ``(product, quantity)`` lines."""
        order_id: str = (await place(self.client, self.shopper, *lines)).json()["id"]
        return order_id

    async def overdue_order(self) -> tuple[Product, str]:
        """A product of 3 in stock, and an order of 2 of them past its payment deadline."""
        product = await self.products(stock=3)
        order_id = await self.place((product, 2))
        await _overdue(self.session, order_id)
        return product, order_id


@pytest.fixture
def sweep(
    committed_client: httpx.AsyncClient,
    committed_shopper: Shopper,
    committed_products: ProductMaker,
    committed_session: AsyncSession,
    sweepers: list[OrderService],
) -> Sweep:
    return Sweep(committed_client, committed_shopper, committed_products, committed_session, sweepers)


async def test_concurrent_sweepers_cancel_each_overdue_order_exactly_once_and_return_its_stock(sweep: Sweep) -> None:
    a, b = await sweep.products.batch(2, stock=200)
    order_ids = [await sweep.place((a, 1), (b, 2)) for _ in range(60)]
    fresh = await sweep.place((a, 1))
    await _overdue(sweep.session, *order_ids)

    # Small batches, so the four sweepers really contend for the same rows.
    batches = await asyncio.gather(
        *(
            s.expire_unpaid(placed_before=datetime.now(UTC) - timedelta(seconds=TTL), limit=7)
            for s in sweep.sweepers * 5
        )
    )
    counts = [batch.count for batch in batches] + [await expire_unpaid_orders(sweep.sweepers[0], ttl=TTL)]

    assert sum(counts) == 60
    cancelled = await sweep.session.scalar(
        select(func.count()).select_from(OrderEvent).where(OrderEvent.reason == "payment_timeout")
    )
    assert cancelled == 60
    for order_id in order_ids:
        assert await _status_events(sweep.session, order_id) == [("cancelled", "payment_timeout")]
    assert await sweep.session.scalar(select(Order.status).where(Order.id == uuid.UUID(fresh))) == "pending"
    assert await _stock_and_sold(sweep.session, a) == (199, 1)
    assert await _stock_and_sold(sweep.session, b) == (200, 0)


async def test_payment_racing_the_timeout_has_one_winner_and_never_leaks_stock(
    sweep: Sweep, committed_staff_headers: dict[str, str]
) -> None:
    outcomes: set[int] = set()
    for _ in range(10):
        product, order_id = await sweep.overdue_order()

        pay, swept = await asyncio.gather(
            sweep.client.patch(f"/orders/{order_id}/status", json={"status": "paid"}, headers=committed_staff_headers),
            expire_unpaid_orders(sweep.sweepers[0], ttl=TTL),
        )

        status = await sweep.session.scalar(select(Order.status).where(Order.id == uuid.UUID(order_id)))
        if pay.status_code == 200:  # payment first: nothing is cancelled
            assert (swept, status) == (0, "paid")
            assert await _status_events(sweep.session, order_id) == [("paid", None)]
            assert await _stock_and_sold(sweep.session, product) == (1, 2)
        else:  # the timeout first: the payment is refused
            assert pay.status_code == 409
            assert pay.json()["code"] == "invalid_transition"
            assert (swept, status) == (1, "cancelled")
            assert await _status_events(sweep.session, order_id) == [("cancelled", "payment_timeout")]
            assert await _stock_and_sold(sweep.session, product) == (3, 0)
        outcomes.add(pay.status_code)
    assert outcomes <= {200, 409}


async def test_a_customer_cancel_racing_the_timeout_has_one_winner_and_returns_stock_once(sweep: Sweep) -> None:
    for _ in range(10):
        product, order_id = await sweep.overdue_order()

        cancel, swept = await asyncio.gather(
            sweep.client.post(f"/orders/{order_id}/cancel", headers=sweep.shopper.headers),
            expire_unpaid_orders(sweep.sweepers[1], ttl=TTL),
        )

        events = await _status_events(sweep.session, order_id)
        if cancel.status_code == 200:
            assert (swept, events) == (0, [("cancelled", None)])
        else:
            assert cancel.status_code == 409
            assert cancel.json()["code"] == "invalid_transition"
            assert (swept, events) == (1, [("cancelled", "payment_timeout")])
        assert await _stock_and_sold(sweep.session, product) == (3, 0)


async def test_orders_paid_or_cancelled_before_their_deadline_and_young_orders_are_left_alone(
    sweep: Sweep, committed_staff_headers: dict[str, str]
) -> None:
    product = await sweep.products(stock=10)
    paid, cancelled, young = [await sweep.place((product, 1)) for _ in range(3)]
    await sweep.client.patch(f"/orders/{paid}/status", json={"status": "paid"}, headers=committed_staff_headers)
    await sweep.client.post(f"/orders/{cancelled}/cancel", headers=sweep.shopper.headers)
    await _overdue(sweep.session, paid, cancelled)

    assert await expire_unpaid_orders(sweep.sweepers[0], ttl=TTL) == 0

    statuses = {row.id: row.status for row in await sweep.session.execute(select(Order.id, Order.status))}
    assert [statuses[uuid.UUID(i)] for i in (paid, cancelled, young)] == ["paid", "cancelled", "pending"]
    assert await _stock_and_sold(sweep.session, product) == (8, 2)
    assert await sweep.session.scalar(text("SELECT count(*) FROM order_events WHERE reason IS NOT NULL")) == 0


async def test_a_sweep_and_the_same_customers_placing_orders_meanwhile_never_deadlock(sweep: Sweep) -> None:
    # Both write the customer's row of order_counts and lock the products: a sweep that took them in the other order
    # than a placement (counts, then products) was chosen as a deadlock victim within seconds under load.
    a, b = await sweep.products.batch(2, stock=10_000)
    overdue = [await sweep.place((a, 1), (b, 1)) for _ in range(120)]
    await _overdue(sweep.session, *overdue)
    sweeping = True

    async def placer() -> list[int]:
        answers = []
        while sweeping:
            answers.append((await place(sweep.client, sweep.shopper, (b, 1), (a, 1))).status_code)
        return answers

    placers = [asyncio.create_task(placer()) for _ in range(4)]
    cutoff = datetime.now(UTC) - timedelta(seconds=TTL)
    swept = 0
    try:
        while (batch := await sweep.sweepers[0].expire_unpaid(placed_before=cutoff, limit=4)).count:
            swept += batch.count
    finally:
        sweeping = False
        answers = [status for statuses in await asyncio.gather(*placers) for status in statuses]

    assert swept == 120
    assert set(answers) == {201}
    placed = len(answers)
    assert await _stock_and_sold(sweep.session, a) == (10_000 - placed, placed)
    assert await _stock_and_sold(sweep.session, b) == (10_000 - placed, placed)
