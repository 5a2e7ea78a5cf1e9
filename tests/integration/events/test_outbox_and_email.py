"""Outbox and email: an event per commit, ids in publish order, emails sent once with retries."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.domain.orders.models import OrderEvent
from app.events.outbox import OutboxDispatcher
from tests.integration.events.conftest import Mailbox
from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker


async def _wait_dispatched(session: AsyncSession, order_id: str, count: int, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    query = select(func.count()).where(
        OrderEvent.order_id == uuid.UUID(order_id), OrderEvent.dispatched_at.is_not(None)
    )
    while (await session.scalar(query)) != count:
        assert asyncio.get_running_loop().time() < deadline, "events were not dispatched in time"
        await asyncio.sleep(0.05)
        await session.rollback()


async def test_timeline_lists_the_orders_events_oldest_first(
    events_client: httpx.AsyncClient, alice: Shopper, staff: dict[str, str], products: ProductMaker, mailbox: Mailbox
) -> None:
    product = await products(stock=5)
    order_id = (await place(events_client, alice, (product, 1))).json()["id"]
    for status in ("paid", "shipped"):
        await events_client.patch(f"/orders/{order_id}/status", json={"status": status}, headers=staff)

    timeline = (await events_client.get(f"/orders/{order_id}/events", headers=alice.headers)).json()

    assert [(e["type"], e["status"], e["previous_status"]) for e in timeline] == [
        ("order_created", "pending", None),
        ("order_status_changed", "paid", "pending"),
        ("order_status_changed", "shipped", "paid"),
    ]
    assert [e["event_id"] for e in timeline] == sorted(e["event_id"] for e in timeline)
    assert all(e["order_id"] == order_id and e["user_id"] == str(alice.user.id) for e in timeline)
    assert set(timeline[0]) == {"event_id", "type", "order_id", "user_id", "status", "previous_status", "at", "reason"}
    assert [e["reason"] for e in timeline] == [None, None, None]  # changes made by people


async def test_timeline_is_404_for_someone_else(
    events_client: httpx.AsyncClient, alice: Shopper, bob: Shopper, staff: dict[str, str], products: ProductMaker
) -> None:
    product = await products(stock=5)
    order_id = (await place(events_client, alice, (product, 1))).json()["id"]

    assert (await events_client.get(f"/orders/{order_id}/events", headers=bob.headers)).status_code == 404
    assert (await events_client.get(f"/orders/{order_id}/events", headers=staff)).status_code == 200


async def test_a_rejected_order_produces_no_event(
    events_client: httpx.AsyncClient, alice: Shopper, products: ProductMaker, session: AsyncSession
) -> None:
    product = await products(stock=1)

    response = await place(events_client, alice, (product, 2))

    assert response.status_code == 422
    assert await session.scalar(select(func.count()).select_from(OrderEvent)) == 0


async def test_confirmation_email_lists_lines_and_total(
    events_client: httpx.AsyncClient, alice: Shopper, products: ProductMaker, mailbox: Mailbox
) -> None:
    mug = await products(name="Enamel mug", price_cents=1250, stock=5)
    tea = await products(name="Green tea", price_cents=799, stock=5)

    order = (await place(events_client, alice, (mug, 2), (tea, 1))).json()
    [message] = await mailbox.wait_for(1)

    assert message["To"] == alice.user.email
    assert "Order confirmation" in message["Subject"]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    for body in (text, html):
        assert order["id"] in body
        assert "Enamel mug" in body
        assert "Green tea" in body
        assert "32.99" in body
    assert "2 x Enamel mug @ $12.50 = $25.00" in text


async def test_status_change_email_names_the_new_status(
    events_client: httpx.AsyncClient, alice: Shopper, staff: dict[str, str], products: ProductMaker, mailbox: Mailbox
) -> None:
    product = await products(stock=5)
    order_id = (await place(events_client, alice, (product, 1))).json()["id"]
    await mailbox.wait_for(1)

    await events_client.patch(f"/orders/{order_id}/status", json={"status": "shipped"}, headers=staff)
    await events_client.patch(f"/orders/{order_id}/status", json={"status": "paid"}, headers=staff)
    messages = await mailbox.wait_for(2)

    assert messages[1]["To"] == alice.user.email
    assert "has been paid" in messages[1]["Subject"]
    assert "pending -> paid" in messages[1].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


async def test_each_event_sends_exactly_one_email(
    events_client: httpx.AsyncClient,
    alice: Shopper,
    staff: dict[str, str],
    products: ProductMaker,
    mailbox: Mailbox,
    session: AsyncSession,
) -> None:
    product = await products(stock=50)
    order_ids = [(await place(events_client, alice, (product, 1))).json()["id"] for _ in range(5)]
    for order_id in order_ids:
        await events_client.patch(f"/orders/{order_id}/status", json={"status": "paid"}, headers=staff)

    await mailbox.wait_for(10)
    await asyncio.sleep(1.0)  # time for any duplicate to show up

    assert len(mailbox.messages) == 10
    emailed = await session.scalar(select(func.count()).where(OrderEvent.emailed_at.is_not(None)))
    assert emailed == 10


async def test_smtp_failures_are_retried_until_the_email_is_delivered(
    events_client: httpx.AsyncClient, alice: Shopper, products: ProductMaker, mailbox: Mailbox
) -> None:
    mailbox.fail_next = 3
    product = await products(stock=5)

    response = await place(events_client, alice, (product, 1))
    [message] = await mailbox.wait_for(1)

    assert response.status_code == 201  # the request never waited for mail
    assert mailbox.attempts == 4
    assert response.json()["id"] in message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


async def test_event_ids_follow_commit_order_not_insert_order(
    engine: AsyncEngine, alice: Shopper, products: ProductMaker, events_client: httpx.AsyncClient
) -> None:
    """Insert A, insert B, commit B, dispatch, commit A, dispatch: B must get the lower id."""
    product = await products(stock=5)
    order_id = uuid.UUID((await place(events_client, alice, (product, 1))).json()["id"])
    dispatcher: OutboxDispatcher = events_client._transport.app.state.components.events.dispatcher  # type: ignore[attr-defined]
    await dispatcher.dispatch()
    maker = async_sessionmaker(engine)

    def event(status: str) -> dict[str, object]:
        return {
            "type": "order_status_changed",
            "order_id": order_id,
            "user_id": alice.user.id,
            "status": status,
            "previous_status": "pending",
            "at": datetime.now(UTC),
        }

    async def event_id_of(row_id: int) -> int:
        """Wait until the dispatcher (ours or the worker's) has published the row; return its event id."""
        for _ in range(200):
            await dispatcher.dispatch()
            async with maker() as check:
                event_id = await check.scalar(select(OrderEvent.event_id).where(OrderEvent.id == row_id))
            if event_id is not None:
                return int(event_id)
            await asyncio.sleep(0.02)
        raise AssertionError("event was not dispatched")

    async with maker() as first, maker() as second:
        insert_event = insert(OrderEvent).returning(OrderEvent.id)
        a_id = (await first.execute(insert_event.values(event("paid")))).scalar_one()
        b_id = (await second.execute(insert_event.values(event("cancelled")))).scalar_one()
        await second.commit()
        b_event = await event_id_of(b_id)  # published while A is still uncommitted
        await first.commit()
        a_event = await event_id_of(a_id)

    assert a_id < b_id
    assert b_event < a_event
