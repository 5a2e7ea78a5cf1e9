"""At-least-once and durable: what committed while the worker or Redis was down is delivered once they are back,
and a delivery is re-checked against the target rules when it is sent, not only when the endpoint was saved."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config import Settings
from app.domain.webhooks.models import WebhookEndpoint
from app.domain.webhooks.signing import new_secret
from app.main import create_app
from tests.conftest import running
from tests.integration.events import test_redis_outage as redis_outage
from tests.integration.events.conftest import SMTPServer
from tests.integration.events.test_redis_outage import ThrowawayRedis
from tests.integration.orders.conftest import Shopper, place
from tests.integration.webhooks.conftest import (
    Receiver,
    deliveries_of,
    subscribe,
    wait_until,
    webhook_settings,
)
from tests.support import ProductMaker, in_process_client

throwaway_redis = redis_outage.throwaway_redis


async def test_order_committed_while_no_worker_runs_is_delivered_when_one_starts(
    settings: Settings,
    smtp_server: SMTPServer,
    committed_db: None,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
) -> None:
    api_only = create_app(webhook_settings(settings, smtp_server.port, WORKER_IN_PROCESS="false"))
    async with running(api_only):
        product = await products(stock=5)
        async with in_process_client(api_only) as api:
            endpoint = await subscribe(api, admin, receiver.url)
            order = (await place(api, alice, (product, 1))).json()
            await asyncio.sleep(0.5)
            assert receiver.requests == []

            async with running(create_app(webhook_settings(settings, smtp_server.port))):
                [request] = await receiver.wait_for(1)

    assert request.verify(endpoint["secret"])["data"]["order_id"] == order["id"]


async def test_order_committed_while_redis_is_down_is_delivered_when_it_returns(
    settings: Settings,
    smtp_server: SMTPServer,
    committed_db: None,
    throwaway_redis: ThrowawayRedis,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
) -> None:
    application = create_app(webhook_settings(settings, smtp_server.port, REDIS_URL=throwaway_redis.url))
    async with running(application):
        product = await products(stock=5)
        async with in_process_client(application) as http:
            endpoint = await subscribe(http, admin, receiver.url)
            throwaway_redis.stop()
            started = time.monotonic()
            response = await place(http, alice, (product, 1))
            elapsed = time.monotonic() - started
            await asyncio.sleep(1.0)
            assert receiver.requests == []

            throwaway_redis.start()
            [request] = await receiver.wait_for(1, within=30)

    assert response.status_code == 201
    assert elapsed < 2.0, "the order request never waits for webhooks or Redis"
    assert request.verify(endpoint["secret"])["data"]["order_id"] == response.json()["id"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_private_target_saved_earlier_is_refused_at_delivery(
    settings: Settings,
    smtp_server: SMTPServer,
    committed_db: None,
    engine: AsyncEngine,
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
    host: str,
) -> None:
    # As if saved while WEBHOOK_ALLOW_PRIVATE was on (or before the name resolved to a private address).
    async with AsyncSession(engine) as session:
        endpoint_id = (
            await session.execute(
                insert(WebhookEndpoint)
                .values(
                    url=f"http://{host}:{receiver.port}/hook",
                    event_types=["order_created"],
                    secret=new_secret(),
                    last_event_id=0,
                )
                .returning(WebhookEndpoint.id)
            )
        ).scalar_one()
        await session.commit()
    strict = create_app(
        webhook_settings(settings, smtp_server.port, WEBHOOK_ALLOW_PRIVATE="false", WEBHOOK_MAX_ATTEMPTS="1")
    )
    async with running(strict):
        product = await products(stock=5)
        async with in_process_client(strict) as http:
            await place(http, alice, (product, 1))
            await wait_until(lambda: _failed(engine, str(endpoint_id)))

    [delivery] = await deliveries_of(engine, str(endpoint_id))
    assert receiver.requests == []
    assert "target refused" in (delivery.last_error or "")
    assert "non-public" in (delivery.last_error or "")


async def _failed(engine: AsyncEngine, endpoint_id: str) -> bool:
    deliveries = await deliveries_of(engine, endpoint_id)
    return bool(deliveries) and deliveries[0].status == "failed"
