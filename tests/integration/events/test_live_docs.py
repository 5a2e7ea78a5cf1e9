"""The OpenAPI document describes the WebSocket messages as they are sent: events (live and replayed) and pongs."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema_rs
from httpx_ws import aconnect_ws
from litestar import Litestar

from tests.integration.events.conftest import bearer, ws_client
from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker

RECEIVE_TIMEOUT = 5.0


async def _documented(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    """The component, with the document's components beside it so that its references resolve."""
    components: dict[str, Any] = (await client.get("/schema/openapi.json")).json()["components"]
    return {**components["schemas"][name], "components": components}


def _errors(schema: dict[str, Any], message: dict[str, Any]) -> list[str]:
    return [error.message for error in jsonschema_rs.Draft202012Validator(schema).iter_errors(message)]


async def test_live_and_replayed_events_have_exactly_the_documented_fields(
    events_app: Litestar, events_client: httpx.AsyncClient, alice: Shopper, products: ProductMaker
) -> None:
    documented = await _documented(events_client, "OrderEventRead")
    product = await products(stock=5)
    async with ws_client(events_app) as client:
        async with aconnect_ws(f"/ws/orders?token={bearer(alice.headers)}", client) as ws:
            await place(events_client, alice, (product, 1))
            live = json.loads(await ws.receive_text(timeout=RECEIVE_TIMEOUT))
        async with aconnect_ws(f"/ws/orders?token={bearer(alice.headers)}&since=0", client) as ws:
            replayed = json.loads(await ws.receive_text(timeout=RECEIVE_TIMEOUT))

    for event in (live, replayed):
        assert _errors(documented, event) == []
        assert set(event) == set(documented["properties"]) == set(documented["required"])


async def test_the_pong_is_the_documented_one(
    events_app: Litestar, events_client: httpx.AsyncClient, alice: Shopper
) -> None:
    documented = await _documented(events_client, "Pong")
    async with ws_client(events_app) as client, aconnect_ws(f"/ws/orders?token={bearer(alice.headers)}", client) as ws:
        await ws.send_text("ping")
        pong = json.loads(await ws.receive_text(timeout=RECEIVE_TIMEOUT))

    assert _errors(documented, pong) == []
    assert _errors(documented, {"type": "ping"}) != []  # the schema pins the value, not just the key
