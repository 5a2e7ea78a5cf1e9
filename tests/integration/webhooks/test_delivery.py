"""Delivery to a real HTTP receiver on 127.0.0.1: signed per Standard Webhooks, retried, logged, and broken off.

Every request the receiver gets is verified with the ``standardwebhooks`` library, as a real receiver would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.catalog.models import Product
from app.domain.webhooks.models import WebhookDelivery
from tests.integration.events.conftest import Mailbox
from tests.integration.orders.conftest import Shopper, place
from tests.integration.webhooks.conftest import Receiver, deliveries_of, endpoint_row, subscribe, wait_until
from tests.support import ProductMaker


@dataclass(frozen=True)
class Shop:
    """What every delivery test arranges with: the app (its in-process worker sends the webhooks), an admin who
    subscribes endpoints, Alice who orders, products to order and the database to read deliveries from."""

    client: httpx.AsyncClient
    admin: dict[str, str]
    alice: Shopper
    products: ProductMaker
    engine: AsyncEngine

    async def subscribe(self, url: str, **body: Any) -> dict[str, Any]:
        return await subscribe(self.client, self.admin, url, **body)

    async def product(self, stock: int = 5) -> Product:
        return await self.products(stock=stock)

    async def place(self, product: Product, quantity: int = 1) -> httpx.Response:
        """Alice orders ``quantity`` of ``product``: the order's event is what the endpoints are sent."""
        return await place(self.client, self.alice, (product, quantity))

    async def deliveries(self, endpoint: dict[str, Any]) -> list[WebhookDelivery]:
        return await deliveries_of(self.engine, endpoint["id"])

    async def settled(self, endpoint: dict[str, Any], status: str, *, within: float = 20.0) -> None:
        """Wait until every delivery to ``endpoint`` has ``status``."""
        await wait_until(lambda: _status_is(self.engine, endpoint["id"], status), within=within)


@pytest.fixture
def shop_on(
    admin: dict[str, str], alice: Shopper, products: ProductMaker, engine: AsyncEngine
) -> Callable[[httpx.AsyncClient], Shop]:
    return lambda client: Shop(client, admin, alice, products, engine)


@pytest.fixture
def shop(webhook_client: httpx.AsyncClient, shop_on: Callable[[httpx.AsyncClient], Shop]) -> Shop:
    return shop_on(webhook_client)


@pytest.fixture
def patient_shop(patient_webhook_client: httpx.AsyncClient, shop_on: Callable[[httpx.AsyncClient], Shop]) -> Shop:
    """``shop`` on ``patient_webhook_client``: 8 attempts, room to bring a receiver up."""
    return shop_on(patient_webhook_client)


async def test_order_event_is_posted_signed_with_the_event_as_data(shop: Shop, receiver: Receiver) -> None:
    endpoint = await shop.subscribe(receiver.url)
    product = await shop.product()

    order = (await shop.place(product)).json()
    [request] = await receiver.wait_for(1)

    message = request.verify(endpoint["secret"])
    assert request.headers["content-type"] == "application/json"
    assert message["type"] == "order_created"
    assert message["data"]["order_id"] == order["id"]
    assert message["data"]["user_id"] == str(shop.alice.user.id)
    assert message["data"]["status"] == "pending"
    assert message["data"]["previous_status"] is None
    assert message["timestamp"] == message["data"]["at"]
    assert isinstance(message["data"]["event_id"], int)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    await shop.settled(endpoint, "succeeded")
    [delivery] = await shop.deliveries(endpoint)
    assert str(delivery.id) == request.headers["webhook-id"]
    assert delivery.attempts == 1
    assert delivery.last_status_code == 204


async def test_unsubscribed_event_types_are_not_sent(shop: Shop, receiver: Receiver) -> None:
    status_only = await shop.subscribe(receiver.url, event_types=["order_status_changed"])
    product = await shop.product()

    order = (await shop.place(product)).json()
    await shop.client.post(f"/orders/{order['id']}/cancel", headers=shop.alice.headers)
    await receiver.wait_for(1)
    await asyncio.sleep(0.5)

    assert {r.verify(status_only["secret"])["type"] for r in receiver.requests} == {"order_status_changed"}
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


async def test_500_then_success_is_retried_with_the_same_webhook_id(shop: Shop, receiver: Receiver) -> None:
    receiver.script = [500]
    endpoint = await shop.subscribe(receiver.url)
    product = await shop.product()

    await shop.place(product)
    first, second = await receiver.wait_for(2)

    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    second.verify(endpoint["secret"])
    await shop.settled(endpoint, "succeeded")
    page = (await shop.client.get(f"/admin/webhooks/{endpoint['id']}/deliveries", headers=shop.admin)).json()
    [delivery] = page["items"]
    assert delivery["attempts"] == 2
    assert delivery["status"] == "succeeded"
    assert delivery["last_status_code"] == 204
    assert delivery["last_error"] is None
    assert delivery["next_attempt_at"] is None
    assert delivery["delivered_at"] is not None
    assert delivery["id"] == first.headers["webhook-id"]


async def test_redirect_is_not_followed_and_counts_as_a_failure(shop: Shop, receiver: Receiver) -> None:
    receiver.default = 302
    endpoint = await shop.subscribe(receiver.url)
    product = await shop.product()

    await shop.place(product)
    await shop.settled(endpoint, "failed")

    assert [r.path for r in receiver.requests] == ["/hook"] * 3  # WEBHOOK_MAX_ATTEMPTS=3, never /elsewhere
    [delivery] = await shop.deliveries(endpoint)
    assert delivery.last_status_code == 302
    assert "redirect" in (delivery.last_error or "")


async def test_no_answer_within_10_seconds_is_a_timeout(shop: Shop, receiver: Receiver) -> None:
    receiver.script = ["hang"]
    endpoint = await shop.subscribe(receiver.url)
    product = await shop.product()

    await shop.place(product)
    await shop.settled(endpoint, "succeeded", within=40)

    first, second = receiver.requests[:2]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    [delivery] = await shop.deliveries(endpoint)
    assert delivery.attempts == 2


async def test_refused_connection_is_retried_until_the_receiver_is_back(patient_shop: Shop) -> None:
    receiver = Receiver()  # not listening yet: connections are refused
    endpoint = await patient_shop.subscribe(receiver.url)
    product = await patient_shop.product()

    await patient_shop.place(product)
    await wait_until(lambda: _attempts_at_least(patient_shop.engine, endpoint["id"], 1))
    [refused] = await patient_shop.deliveries(endpoint)
    await receiver.start()
    try:
        [request] = await receiver.wait_for(1)
    finally:
        await receiver.stop()

    assert refused.status == "pending"
    assert refused.last_status_code is None
    assert "connection failed" in (refused.last_error or "")
    assert request.headers["webhook-id"] == str(refused.id)


async def test_refused_every_time_ends_failed(shop: Shop) -> None:
    endpoint = await shop.subscribe(Receiver().url)
    product = await shop.product()

    await shop.place(product)
    await shop.settled(endpoint, "failed")

    page = (await shop.client.get(f"/admin/webhooks/{endpoint['id']}/deliveries", headers=shop.admin)).json()
    [delivery] = page["items"]
    assert delivery["attempts"] == 3
    assert delivery["next_attempt_at"] is None
    assert delivery["delivered_at"] is None


async def test_endpoint_is_disabled_after_repeated_failures_and_admins_are_emailed(
    shop: Shop, receiver: Receiver, mailbox: Mailbox
) -> None:
    receiver.default = 503
    endpoint = await shop.subscribe(receiver.url, description="ERP")
    product = await shop.product()

    await shop.place(product)
    await shop.place(product)  # WEBHOOK_DISABLE_AFTER=2
    await wait_until(lambda: _is_inactive(shop.engine, endpoint["id"]))
    messages = await mailbox.wait_for(3)  # two order confirmations and the admin notice

    shown = (await shop.client.get(f"/admin/webhooks/{endpoint['id']}", headers=shop.admin)).json()
    assert shown["is_active"] is False
    assert "2 deliveries in a row failed" in shown["disabled_reason"]
    notice = [m for m in messages if m["Subject"] == "Webhook endpoint deactivated"]
    assert [m["To"] for m in notice] == ["webhook-admin@example.com"]
    assert receiver.url in notice[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    before = len(receiver.requests)
    await shop.place(product)
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == before, "an inactive endpoint receives nothing"


async def test_redeliver_sends_a_failed_delivery_again_with_the_same_webhook_id(shop: Shop, receiver: Receiver) -> None:
    receiver.script = [500, 500, 500]
    endpoint = await shop.subscribe(receiver.url)
    product = await shop.product()
    await shop.place(product)
    await shop.settled(endpoint, "failed")
    [failed] = await shop.deliveries(endpoint)

    response = await shop.client.post(
        f"/admin/webhooks/{endpoint['id']}/deliveries/{failed.id}/redeliver", headers=shop.admin
    )
    await shop.settled(endpoint, "succeeded")

    assert response.status_code == 202
    assert len(receiver.requests) == 4
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(failed.id)}
    receiver.requests[-1].verify(endpoint["secret"])
    [delivered] = await shop.deliveries(endpoint)
    assert delivered.attempts == 4


async def test_redeliver_on_an_inactive_endpoint_makes_one_attempt_and_leaves_it_inactive(
    shop: Shop, receiver: Receiver
) -> None:
    receiver.default = 503
    endpoint = await shop.subscribe(receiver.url)
    product = await shop.product()
    await shop.place(product)
    await shop.place(product)  # WEBHOOK_DISABLE_AFTER=2: the breaker trips
    await wait_until(lambda: _is_inactive(shop.engine, endpoint["id"]))
    first, _ = await shop.deliveries(endpoint)
    receiver.default = 204
    before = len(receiver.requests)

    response = await shop.client.post(
        f"/admin/webhooks/{endpoint['id']}/deliveries/{first.id}/redeliver", headers=shop.admin
    )
    await wait_until(lambda: _delivery_status_is(shop.engine, endpoint["id"], str(first.id), "succeeded"))

    assert response.status_code == 202
    [again] = receiver.requests[before:]
    assert again.headers["webhook-id"] == str(first.id)
    again.verify(endpoint["secret"])
    shown = (await shop.client.get(f"/admin/webhooks/{endpoint['id']}", headers=shop.admin)).json()
    assert shown["is_active"] is False, "a redelivery does not re-activate the endpoint"
    statuses = {str(d.id): d.status for d in await shop.deliveries(endpoint)}
    assert sorted(statuses.values()) == ["failed", "succeeded"], "only the redelivered one is sent again"


async def test_after_rotation_both_secrets_verify_for_24_hours(shop: Shop, receiver: Receiver) -> None:
    endpoint = await shop.subscribe(receiver.url)
    rotated = (await shop.client.post(f"/admin/webhooks/{endpoint['id']}/rotate-secret", headers=shop.admin)).json()
    product = await shop.product()

    await shop.place(product)
    [request] = await receiver.wait_for(1)

    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert request.verify(endpoint["secret"]) == request.verify(rotated["secret"])


async def test_failed_order_request_sends_nothing(shop: Shop, receiver: Receiver) -> None:
    endpoint = await shop.subscribe(receiver.url)
    product = await shop.product(stock=1)

    refused = await shop.place(product, 2)  # insufficient stock: rolled back
    placed = await shop.place(product)
    await receiver.wait_for(1)
    await asyncio.sleep(0.5)

    assert refused.status_code == 422
    # At least once: a retry would repeat the same message (same webhook-id), never bring another event.
    assert {r.verify(endpoint["secret"])["data"]["order_id"] for r in receiver.requests} == {placed.json()["id"]}
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len(await shop.deliveries(endpoint)) == 1


async def _status_is(engine: AsyncEngine, endpoint_id: str, status: str) -> bool:
    deliveries = await deliveries_of(engine, endpoint_id)
    return bool(deliveries) and all(d.status == status for d in deliveries)


async def _attempts_at_least(engine: AsyncEngine, endpoint_id: str, attempts: int) -> bool:
    deliveries = await deliveries_of(engine, endpoint_id)
    return bool(deliveries) and all(d.attempts >= attempts for d in deliveries)


async def _delivery_status_is(engine: AsyncEngine, endpoint_id: str, delivery_id: str, status: str) -> bool:
    return any(str(d.id) == delivery_id and d.status == status for d in await deliveries_of(engine, endpoint_id))


async def _is_inactive(engine: AsyncEngine, endpoint_id: str) -> bool:
    return not (await endpoint_row(engine, endpoint_id)).is_active
