"""Live order events over WebSockets: auth, ping, isolation, every tab, admin feed, resume, and ending sessions."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws
from litestar import Litestar
from redis.asyncio import Redis

from app.components import components_of
from app.config import Settings
from app.core.security import TokenCodec
from app.events.outbox import EventChannels
from app.main import create_app
from tests.conftest import start_app
from tests.integration.core.dedicated_app import dedicated_settings
from tests.integration.events.conftest import RECEIVE_TIMEOUT, bearer, refusal, ws_client
from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker, UserMaker


async def _events(ws: Any, count: int) -> list[dict[str, Any]]:
    return [json.loads(await ws.receive_text(timeout=RECEIVE_TIMEOUT)) for _ in range(count)]


async def _nothing_more(ws: Any, wait: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        await ws.receive_text(timeout=wait)


async def test_owner_receives_their_order_events_live(
    events_app: Litestar,
    events_client: httpx.AsyncClient,
    alice: Shopper,
    staff: dict[str, str],
    products: ProductMaker,
) -> None:
    product = await products(stock=5)
    async with ws_client(events_app) as client, aconnect_ws(f"/ws/orders?token={bearer(alice.headers)}", client) as ws:
        order_id = (await place(events_client, alice, (product, 1))).json()["id"]
        await events_client.patch(f"/orders/{order_id}/status", json={"status": "paid"}, headers=staff)

        created, paid = await _events(ws, 2)

    assert created | {"event_id": 0, "at": ""} == {
        "event_id": 0,
        "type": "order_created",
        "order_id": order_id,
        "user_id": str(alice.user.id),
        "status": "pending",
        "previous_status": None,
        "at": "",
        "reason": None,
    }
    assert (paid["type"], paid["status"], paid["previous_status"]) == ("order_status_changed", "paid", "pending")
    assert paid["reason"] is None
    assert paid["event_id"] > created["event_id"]


async def test_ping_is_answered_with_pong(events_app: Litestar, alice: Shopper) -> None:
    async with ws_client(events_app) as client, aconnect_ws(f"/ws/orders?token={bearer(alice.headers)}", client) as ws:
        await ws.send_text("ping")
        assert json.loads(await ws.receive_text(timeout=RECEIVE_TIMEOUT)) == {"type": "pong"}


@pytest.mark.parametrize("token", ["", "not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
async def test_missing_or_invalid_token_is_refused(events_app: Litestar, token: str) -> None:
    assert await refusal(events_app, f"/ws/orders?token={token}") in {403, 1008}


async def test_expired_token_is_refused(events_app: Litestar, alice: Shopper) -> None:
    codec: TokenCodec = components_of(events_app).tokens
    expired = TokenCodec(
        secret=components_of(events_app).settings.jwt_secret, algorithm="HS256", ttl=timedelta(seconds=-5)
    )

    assert await refusal(events_app, f"/ws/orders?token={expired.issue(alice.user.id)}") in {403, 1008}
    assert codec is not None


async def test_customer_is_refused_on_the_admin_feed(events_app: Litestar, alice: Shopper) -> None:
    assert await refusal(events_app, f"/ws/admin/orders?token={bearer(alice.headers)}") in {403, 1008}


async def test_users_only_receive_their_own_events(
    events_app: Litestar, events_client: httpx.AsyncClient, alice: Shopper, bob: Shopper, products: ProductMaker
) -> None:
    product = await products(stock=5)
    async with (
        ws_client(events_app) as client,
        aconnect_ws(f"/ws/orders?token={bearer(alice.headers)}", client) as alice_ws,
        aconnect_ws(f"/ws/orders?token={bearer(bob.headers)}", client) as bob_ws,
    ):
        bobs_order = (await place(events_client, bob, (product, 1))).json()["id"]
        alices_order = (await place(events_client, alice, (product, 1))).json()["id"]

        [for_alice] = await _events(alice_ws, 1)
        [for_bob] = await _events(bob_ws, 1)
        await _nothing_more(alice_ws)
        await _nothing_more(bob_ws)

    assert for_alice["order_id"] == alices_order
    assert for_bob["order_id"] == bobs_order


async def test_every_open_tab_of_a_user_receives_the_event(
    events_app: Litestar, events_client: httpx.AsyncClient, alice: Shopper, products: ProductMaker
) -> None:
    product = await products(stock=5)
    url = f"/ws/orders?token={bearer(alice.headers)}"
    async with ws_client(events_app) as client, aconnect_ws(url, client) as tab1, aconnect_ws(url, client) as tab2:
        order_id = (await place(events_client, alice, (product, 1))).json()["id"]

        assert (await _events(tab1, 1))[0]["order_id"] == order_id
        assert (await _events(tab2, 1))[0]["order_id"] == order_id


async def test_admin_feed_receives_every_users_events(
    events_app: Litestar,
    events_client: httpx.AsyncClient,
    alice: Shopper,
    bob: Shopper,
    staff: dict[str, str],
    products: ProductMaker,
) -> None:
    product = await products(stock=5)
    async with ws_client(events_app) as client, aconnect_ws(f"/ws/admin/orders?token={bearer(staff)}", client) as ws:
        first = (await place(events_client, alice, (product, 1))).json()["id"]
        second = (await place(events_client, bob, (product, 1))).json()["id"]

        received = await _events(ws, 2)

    assert [e["order_id"] for e in received] == [first, second]


async def test_events_of_a_deployment_on_another_redis_database_never_arrive(
    events_app: Litestar,
    events_client: httpx.AsyncClient,
    alice: Shopper,
    staff: dict[str, str],
    products: ProductMaker,
) -> None:
    # Redis pub/sub ignores the database number; a deployment on another database publishes to other channels.
    settings: Settings = components_of(events_app).settings
    assert settings.redis_url is not None
    own_db = int(settings.redis_url.rsplit("/", 1)[1])
    product = await products(stock=5)
    async with (
        Redis.from_url(settings.redis_url.rsplit("/", 1)[0] + f"/{0 if own_db else 1}") as neighbour,
        ws_client(events_app) as client,
        aconnect_ws(f"/ws/admin/orders?token={bearer(staff)}", client) as admin_ws,
        aconnect_ws(f"/ws/orders?token={bearer(alice.headers)}", client) as alice_ws,
    ):
        theirs = EventChannels.for_redis(neighbour)
        foreign = {"event_id": 10**9, "type": "order_created", "order_id": str(uuid.uuid4()), "status": "pending"}
        await neighbour.publish(theirs.all_orders, json.dumps(foreign))
        await neighbour.publish(theirs.user(alice.user.id), json.dumps(foreign))
        order_id = (await place(events_client, alice, (product, 1))).json()["id"]

        [for_admin] = await _events(admin_ws, 1)
        [for_alice] = await _events(alice_ws, 1)

    assert theirs.all_orders != f"orders.{own_db}.all"
    assert for_admin["order_id"] == for_alice["order_id"] == order_id


async def test_resuming_with_since_misses_nothing_and_repeats_nothing(
    events_app: Litestar,
    events_client: httpx.AsyncClient,
    alice: Shopper,
    staff: dict[str, str],
    products: ProductMaker,
) -> None:
    product = await products(stock=100)
    token = bearer(alice.headers)
    placed: list[str] = []
    keep_ordering = asyncio.Event()

    async def order_continuously() -> None:
        while not keep_ordering.is_set():
            placed.append((await place(events_client, alice, (product, 1))).json()["id"])
            await asyncio.sleep(0.01)

    async with ws_client(events_app) as client:
        async with aconnect_ws(f"/ws/orders?token={token}", client) as ws:
            producer = asyncio.create_task(order_continuously())
            seen = await _events(ws, 3)
        # Disconnected while orders keep coming; reconnect with the last id seen.
        await asyncio.sleep(0.3)
        async with aconnect_ws(f"/ws/orders?token={token}&since={seen[-1]['event_id']}", client) as ws:
            await asyncio.sleep(0.3)
            keep_ordering.set()
            await producer
            while len(seen) < len(placed):
                seen.extend(await _events(ws, 1))
            await _nothing_more(ws)

    ids = [e["event_id"] for e in seen]
    assert ids == sorted(set(ids)), "duplicates or out of order"
    assert [e["order_id"] for e in seen] == placed, "a gap: some order's event never arrived"


async def test_since_zero_replays_from_the_start(
    events_app: Litestar, events_client: httpx.AsyncClient, alice: Shopper, products: ProductMaker
) -> None:
    product = await products(stock=5)
    first = (await place(events_client, alice, (product, 1))).json()["id"]
    second = (await place(events_client, alice, (product, 1))).json()["id"]
    await events_client.get(f"/orders/{second}/events", headers=alice.headers)  # both dispatched

    async with (
        ws_client(events_app) as client,
        aconnect_ws(f"/ws/orders?token={bearer(alice.headers)}&since=0", client) as ws,
    ):
        replayed = await _events(ws, 2)
        await _nothing_more(ws)

    assert [e["order_id"] for e in replayed] == [first, second]


async def test_deactivating_a_user_closes_their_sockets(
    events_app: Litestar, events_client: httpx.AsyncClient, alice: Shopper, users: UserMaker, tokens: Any
) -> None:
    admin = tokens(await users(roles=("admin",)))
    async with ws_client(events_app) as client, aconnect_ws(f"/ws/orders?token={bearer(alice.headers)}", client) as ws:
        response = await events_client.patch(f"/admin/users/{alice.user.id}", json={"is_active": False}, headers=admin)
        assert response.status_code == 200
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text(timeout=10)

    assert closed.value.code == 1008


async def test_losing_orders_manage_closes_admin_feeds_on_every_process(
    events_app: Litestar,
    events_client: httpx.AsyncClient,
    settings: Settings,
    users: UserMaker,
    tokens: Any,
) -> None:
    # A second app instance (its own watchdog and sockets, same database and Redis) stands in for another process.
    other_process = create_app(dedicated_settings(settings, LIVE_CHECK_INTERVAL="0.5"))
    task, stop = await start_app(other_process)
    clerk = await users(roles=("staff",))
    admin = tokens(await users(roles=("admin",)))
    token = bearer(tokens(clerk))
    try:
        async with (
            ws_client(events_app) as here,
            ws_client(other_process) as there,
            aconnect_ws(f"/ws/admin/orders?token={token}", here) as admin_here,
            aconnect_ws(f"/ws/admin/orders?token={token}", there) as admin_there,
            aconnect_ws(f"/ws/orders?token={token}", here) as own_orders,
        ):
            response = await events_client.patch(
                f"/admin/users/{clerk.id}", json={"roles": ["customer"]}, headers=admin
            )
            assert response.status_code == 200
            codes = []
            for ws in (admin_here, admin_there):
                with pytest.raises(WebSocketDisconnect) as closed:
                    await ws.receive_text(timeout=10)
                codes.append(closed.value.code)
            await own_orders.send_text("ping")  # the user's own feed needs no permission: it stays open
            pong = json.loads(await own_orders.receive_text(timeout=RECEIVE_TIMEOUT))
    finally:
        stop.set()
        await task

    assert codes == [1008, 1008]
    assert pong == {"type": "pong"}


async def test_the_socket_closes_when_its_token_expires(events_app: Litestar, alice: Shopper) -> None:
    short = TokenCodec(
        secret=components_of(events_app).settings.jwt_secret, algorithm="HS256", ttl=timedelta(seconds=3)
    )

    async with (
        ws_client(events_app) as client,
        aconnect_ws(f"/ws/orders?token={short.issue(alice.user.id)}", client) as ws,
    ):
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text(timeout=10)

    assert closed.value.code == 1008
