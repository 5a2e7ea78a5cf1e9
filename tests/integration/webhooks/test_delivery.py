"""Delivery to a real HTTP receiver on 127.0.0.1: signed per Standard Webhooks, retried, logged, and broken off.

Every request the receiver gets is verified with the ``standardwebhooks`` library, as a real receiver would.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.events.conftest import Mailbox
from tests.integration.orders.conftest import Shopper, place
from tests.integration.webhooks.conftest import Receiver, deliveries_of, endpoint_row, subscribe, wait_until
from tests.support import ProductMaker


async def test_order_event_is_posted_signed_with_the_event_as_data(
    webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
    engine: AsyncEngine,
) -> None:
    endpoint = await subscribe(webhook_client, admin, receiver.url)
    product = await products(stock=5)

    order = (await place(webhook_client, alice, (product, 1))).json()
    [request] = await receiver.wait_for(1)

    message = request.verify(endpoint["secret"])
    assert request.headers["content-type"] == "application/json"
    assert message["type"] == "order_created"
    assert message["data"]["order_id"] == order["id"]
    assert message["data"]["user_id"] == str(alice.user.id)
    assert message["data"]["status"] == "pending"
    assert message["data"]["previous_status"] is None
    assert message["timestamp"] == message["data"]["at"]
    assert isinstance(message["data"]["event_id"], int)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    await wait_until(lambda: _status_is(engine, endpoint["id"], "succeeded"))
    [delivery] = await deliveries_of(engine, endpoint["id"])
    assert str(delivery.id) == request.headers["webhook-id"]
    assert delivery.attempts == 1
    assert delivery.last_status_code == 204


async def test_unsubscribed_event_types_are_not_sent(
    webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
    engine: AsyncEngine,
) -> None:
    status_only = await subscribe(webhook_client, admin, receiver.url, event_types=["order_status_changed"])
    product = await products(stock=5)

    order = (await place(webhook_client, alice, (product, 1))).json()
    await webhook_client.post(f"/orders/{order['id']}/cancel", headers=alice.headers)
    await receiver.wait_for(1)
    await asyncio.sleep(0.5)

    assert {r.verify(status_only["secret"])["type"] for r in receiver.requests} == {"order_status_changed"}
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


async def test_500_then_success_is_retried_with_the_same_webhook_id(
    webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
    engine: AsyncEngine,
) -> None:
    receiver.script = [500]
    endpoint = await subscribe(webhook_client, admin, receiver.url)
    product = await products(stock=5)

    await place(webhook_client, alice, (product, 1))
    first, second = await receiver.wait_for(2)

    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    second.verify(endpoint["secret"])
    await wait_until(lambda: _status_is(engine, endpoint["id"], "succeeded"))
    page = (await webhook_client.get(f"/admin/webhooks/{endpoint['id']}/deliveries", headers=admin)).json()
    [delivery] = page["items"]
    assert delivery["attempts"] == 2
    assert delivery["status"] == "succeeded"
    assert delivery["last_status_code"] == 204
    assert delivery["last_error"] is None
    assert delivery["next_attempt_at"] is None
    assert delivery["delivered_at"] is not None
    assert delivery["id"] == first.headers["webhook-id"]


async def test_redirect_is_not_followed_and_counts_as_a_failure(
    webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
    engine: AsyncEngine,
) -> None:
    receiver.default = 302
    endpoint = await subscribe(webhook_client, admin, receiver.url)
    product = await products(stock=5)

    await place(webhook_client, alice, (product, 1))
    await wait_until(lambda: _status_is(engine, endpoint["id"], "failed"))

    assert [r.path for r in receiver.requests] == ["/hook"] * 3  # WEBHOOK_MAX_ATTEMPTS=3, never /elsewhere
    [delivery] = await deliveries_of(engine, endpoint["id"])
    assert delivery.last_status_code == 302
    assert "redirect" in (delivery.last_error or "")


async def test_no_answer_within_10_seconds_is_a_timeout(
    webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
    engine: AsyncEngine,
) -> None:
    receiver.script = ["hang"]
    endpoint = await subscribe(webhook_client, admin, receiver.url)
    product = await products(stock=5)

    await place(webhook_client, alice, (product, 1))
    await wait_until(lambda: _status_is(engine, endpoint["id"], "succeeded"), within=40)

    first, second = receiver.requests[:2]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    [delivery] = await deliveries_of(engine, endpoint["id"])
    assert delivery.attempts == 2


async def test_refused_connection_is_retried_until_the_receiver_is_back(
    patient_webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    alice: Shopper,
    products: ProductMaker,
    engine: AsyncEngine,
) -> None:
    receiver = Receiver()  # not listening yet: connections are refused
    endpoint = await subscribe(patient_webhook_client, admin, receiver.url)
    product = await products(stock=5)

    await place(patient_webhook_client, alice, (product, 1))
    await wait_until(lambda: _attempts_at_least(engine, endpoint["id"], 1))
    [refused] = await deliveries_of(engine, endpoint["id"])
    await receiver.start()
    try:
        [request] = await receiver.wait_for(1)
    finally:
        await receiver.stop()

    assert refused.status == "pending"
    assert refused.last_status_code is None
    assert "connection failed" in (refused.last_error or "")
    assert request.headers["webhook-id"] == str(refused.id)


async def test_refused_every_time_ends_failed(
    webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    alice: Shopper,
    products: ProductMaker,
    engine: AsyncEngine,
) -> None:
    endpoint = await subscribe(webhook_client, admin, Receiver().url)
    product = await products(stock=5)

    await place(webhook_client, alice, (product, 1))
    await wait_until(lambda: _status_is(engine, endpoint["id"], "failed"))

    page = (await webhook_client.get(f"/admin/webhooks/{endpoint['id']}/deliveries", headers=admin)).json()
    [delivery] = page["items"]
    assert delivery["attempts"] == 3
    assert delivery["next_attempt_at"] is None
    assert delivery["delivered_at"] is None


async def test_endpoint_is_disabled_after_repeated_failures_and_admins_are_emailed(
    webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
    engine: AsyncEngine,
    mailbox: Mailbox,
) -> None:
    receiver.default = 503
    endpoint = await subscribe(webhook_client, admin, receiver.url, description="ERP")
    product = await products(stock=5)

    await place(webhook_client, alice, (product, 1))
    await place(webhook_client, alice, (product, 1))  # WEBHOOK_DISABLE_AFTER=2
    await wait_until(lambda: _is_inactive(engine, endpoint["id"]))
    messages = await mailbox.wait_for(3)  # two order confirmations and the admin notice

    shown = (await webhook_client.get(f"/admin/webhooks/{endpoint['id']}", headers=admin)).json()
    assert shown["is_active"] is False
    assert "2 deliveries in a row failed" in shown["disabled_reason"]
    notice = [m for m in messages if m["Subject"] == "Webhook endpoint deactivated"]
    assert [m["To"] for m in notice] == ["webhook-admin@example.com"]
    assert receiver.url in notice[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    before = len(receiver.requests)
    await place(webhook_client, alice, (product, 1))
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == before, "an inactive endpoint receives nothing"


async def test_redeliver_sends_a_failed_delivery_again_with_the_same_webhook_id(
    webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
    engine: AsyncEngine,
) -> None:
    receiver.script = [500, 500, 500]
    endpoint = await subscribe(webhook_client, admin, receiver.url)
    product = await products(stock=5)
    await place(webhook_client, alice, (product, 1))
    await wait_until(lambda: _status_is(engine, endpoint["id"], "failed"))
    [failed] = await deliveries_of(engine, endpoint["id"])

    response = await webhook_client.post(
        f"/admin/webhooks/{endpoint['id']}/deliveries/{failed.id}/redeliver", headers=admin
    )
    await wait_until(lambda: _status_is(engine, endpoint["id"], "succeeded"))

    assert response.status_code == 202
    assert len(receiver.requests) == 4
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(failed.id)}
    receiver.requests[-1].verify(endpoint["secret"])
    [delivered] = await deliveries_of(engine, endpoint["id"])
    assert delivered.attempts == 4


async def test_redeliver_on_an_inactive_endpoint_makes_one_attempt_and_leaves_it_inactive(
    webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
    engine: AsyncEngine,
) -> None:
    receiver.default = 503
    endpoint = await subscribe(webhook_client, admin, receiver.url)
    product = await products(stock=5)
    await place(webhook_client, alice, (product, 1))
    await place(webhook_client, alice, (product, 1))  # WEBHOOK_DISABLE_AFTER=2: the breaker trips
    await wait_until(lambda: _is_inactive(engine, endpoint["id"]))
    first, _ = await deliveries_of(engine, endpoint["id"])
    receiver.default = 204
    before = len(receiver.requests)

    response = await webhook_client.post(
        f"/admin/webhooks/{endpoint['id']}/deliveries/{first.id}/redeliver", headers=admin
    )
    await wait_until(lambda: _delivery_status_is(engine, endpoint["id"], str(first.id), "succeeded"))

    assert response.status_code == 202
    [again] = receiver.requests[before:]
    assert again.headers["webhook-id"] == str(first.id)
    again.verify(endpoint["secret"])
    shown = (await webhook_client.get(f"/admin/webhooks/{endpoint['id']}", headers=admin)).json()
    assert shown["is_active"] is False, "a redelivery does not re-activate the endpoint"
    statuses = {str(d.id): d.status for d in await deliveries_of(engine, endpoint["id"])}
    assert sorted(statuses.values()) == ["failed", "succeeded"], "only the redelivered one is sent again"


async def test_after_rotation_both_secrets_verify_for_24_hours(
    webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
) -> None:
    endpoint = await subscribe(webhook_client, admin, receiver.url)
    rotated = (await webhook_client.post(f"/admin/webhooks/{endpoint['id']}/rotate-secret", headers=admin)).json()
    product = await products(stock=5)

    await place(webhook_client, alice, (product, 1))
    [request] = await receiver.wait_for(1)

    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert request.verify(endpoint["secret"]) == request.verify(rotated["secret"])


async def test_failed_order_request_sends_nothing(
    webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
    engine: AsyncEngine,
) -> None:
    endpoint = await subscribe(webhook_client, admin, receiver.url)
    product = await products(stock=1)

    refused = await place(webhook_client, alice, (product, 2))  # insufficient stock: rolled back
    placed = await place(webhook_client, alice, (product, 1))
    await receiver.wait_for(1)
    await asyncio.sleep(0.5)

    assert refused.status_code == 422
    # At least once: a retry would repeat the same message (same webhook-id), never bring another event.
    assert {r.verify(endpoint["secret"])["data"]["order_id"] for r in receiver.requests} == {placed.json()["id"]}
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len(await deliveries_of(engine, endpoint["id"])) == 1


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
