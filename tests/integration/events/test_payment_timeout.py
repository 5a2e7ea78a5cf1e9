"""The payment timeout end to end: the worker cancels an overdue order, and its event is published, listed in the
timeline, sent on WebSockets and emailed with its own wording, all with ``reason: "payment_timeout"``."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from httpx_ws import aconnect_ws
from litestar import Litestar
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.catalog.models import Product
from app.domain.orders.models import Order
from app.main import create_app
from tests.conftest import running
from tests.integration.events.conftest import Mailbox, SMTPServer, bearer, events_settings, ws_client
from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker, in_process_client

TTL = 1800


@pytest.fixture
async def sweeping_app(settings: Settings, smtp_server: SMTPServer, committed_db: None) -> AsyncIterator[Litestar]:
    """An app whose in-process worker sweeps for overdue orders every 0.1 s (default TTL, 30 min)."""
    async with running(create_app(events_settings(settings, smtp_server.port, PAYMENT_EXPIRY_INTERVAL="0.1"))) as app:
        yield app


@pytest.fixture
async def sweeping_client(sweeping_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_client(sweeping_app) as c:
        yield c


async def _overdue(session: AsyncSession, order_id: str) -> None:
    await session.execute(
        text("UPDATE orders SET created_at = created_at - make_interval(secs => :by) WHERE id = :id"),
        {"by": TTL + 1, "id": uuid.UUID(order_id)},
    )
    await session.commit()


async def _wait_for_status(session: AsyncSession, order_id: str, status: str, within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while await session.scalar(select(Order.status).where(Order.id == uuid.UUID(order_id))) != status:
        assert asyncio.get_running_loop().time() < deadline, f"order {order_id} did not become {status}"
        await asyncio.sleep(0.05)


async def test_the_worker_cancels_an_overdue_order_returns_its_stock_and_lists_the_reason(
    sweeping_client: httpx.AsyncClient, alice: Shopper, products: ProductMaker, session: AsyncSession
) -> None:
    product = await products(stock=5)
    order_id = (await place(sweeping_client, alice, (product, 2))).json()["id"]
    await _overdue(session, order_id)

    await _wait_for_status(session, order_id, "cancelled")

    assert await session.scalar(select(Product.stock).where(Product.id == product.id)) == 5
    timeline = (await sweeping_client.get(f"/orders/{order_id}/events", headers=alice.headers)).json()
    assert [(e["status"], e["previous_status"], e["reason"]) for e in timeline] == [
        ("pending", None, None),
        ("cancelled", "pending", "payment_timeout"),
    ]


async def test_the_timeout_is_emailed_with_its_own_wording(
    sweeping_client: httpx.AsyncClient, alice: Shopper, products: ProductMaker, session: AsyncSession, mailbox: Mailbox
) -> None:
    product = await products(name="Enamel mug", price_cents=1250, stock=5)
    order_id = (await place(sweeping_client, alice, (product, 2))).json()["id"]
    await _overdue(session, order_id)

    _, timed_out = await mailbox.wait_for(2)

    assert timed_out["To"] == alice.user.email
    assert timed_out["Subject"] == f"Your order #{order_id.split('-')[0]} was cancelled: payment not received in time"
    body = timed_out.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert f"we did not receive the payment for your order {order_id} in time" in body
    assert "2 x Enamel mug = $25.00" in body
    html = timed_out.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "payment not received in time" in html


async def test_websocket_listeners_receive_the_timeout_with_its_reason(
    sweeping_app: Litestar,
    sweeping_client: httpx.AsyncClient,
    alice: Shopper,
    products: ProductMaker,
    session: AsyncSession,
) -> None:
    product = await products(stock=5)
    url = f"/ws/orders?token={bearer(alice.headers)}"
    async with ws_client(sweeping_app) as client, aconnect_ws(url, client) as ws:
        order_id = (await place(sweeping_client, alice, (product, 1))).json()["id"]
        await _overdue(session, order_id)

        created, timed_out = [json.loads(await ws.receive_text(timeout=15.0)) for _ in range(2)]

    assert (created["type"], created["reason"]) == ("order_created", None)
    assert (timed_out["order_id"], timed_out["type"]) == (order_id, "order_status_changed")
    assert (timed_out["status"], timed_out["previous_status"], timed_out["reason"]) == (
        "cancelled",
        "pending",
        "payment_timeout",
    )


async def test_ttl_zero_leaves_pending_orders_alone(
    settings: Settings,
    smtp_server: SMTPServer,
    committed_db: None,
    alice: Shopper,
    products: ProductMaker,
    session: AsyncSession,
    mailbox: Mailbox,
) -> None:
    never = events_settings(settings, smtp_server.port, ORDER_PAYMENT_TTL="0", PAYMENT_EXPIRY_INTERVAL="0.1")
    async with running(create_app(never)) as application, in_process_client(application) as client:
        order_id = (await place(client, alice, (await products(stock=5), 1))).json()["id"]
        await session.execute(
            text("UPDATE orders SET created_at = created_at - interval '1 year' WHERE id = :id"),
            {"id": uuid.UUID(order_id)},
        )
        await session.commit()
        await mailbox.wait_for(1)  # the worker runs: its confirmation went out
        await asyncio.sleep(1.0)  # ten sweep intervals, had there been a sweep

    assert await session.scalar(select(Order.status).where(Order.id == uuid.UUID(order_id))) == "pending"
    assert len(mailbox.messages) == 1
