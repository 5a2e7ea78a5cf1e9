"""The OpenAPI document describes a webhook request as it is sent: the body and the Standard Webhooks headers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema_rs

from tests.integration.orders.conftest import Shopper, place
from tests.integration.webhooks.conftest import Receiver, subscribe
from tests.support import ProductMaker


def _validator(document: dict[str, Any], name: str) -> jsonschema_rs.Draft202012Validator:
    # The component's $refs point into the document ("#/components/schemas/..."): validate with it as the root.
    return jsonschema_rs.Draft202012Validator({**document["components"]["schemas"][name], **document})


def _errors(validator: jsonschema_rs.Draft202012Validator, instance: dict[str, Any]) -> list[str]:
    return [error.message for error in validator.iter_errors(instance)]


async def test_a_delivered_body_and_its_headers_match_the_documented_schemas(
    webhook_client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    alice: Shopper,
    products: ProductMaker,
) -> None:
    document = (await webhook_client.get("/schema/openapi.json")).json()
    endpoint = await subscribe(webhook_client, admin, receiver.url)
    await webhook_client.post(f"/admin/webhooks/{endpoint['id']}/rotate-secret", headers=admin)  # two signatures
    product = await products(stock=5)

    await place(webhook_client, alice, (product, 1))
    [request, *_] = await receiver.wait_for(1)

    body = json.loads(request.body)
    headers = {name: request.headers[name] for name in document["components"]["schemas"]["WebhookHeaders"]["required"]}
    assert _errors(_validator(document, "WebhookMessage"), body) == []
    assert set(body["data"]) == set(document["components"]["schemas"]["OrderEventRead"]["required"])
    assert _errors(_validator(document, "WebhookHeaders"), headers) == []
    assert len(headers["webhook-signature"].split(" ")) == 2


async def test_the_documented_schemas_refuse_what_is_not_sent(webhook_client: httpx.AsyncClient) -> None:
    document = (await webhook_client.get("/schema/openapi.json")).json()

    assert _errors(_validator(document, "WebhookMessage"), {"type": "order_created", "timestamp": "x"}) != []
    assert _errors(_validator(document, "WebhookMessage"), {"type": "ping", "timestamp": "x", "data": {}}) != []
    signature = {"webhook-id": "1", "webhook-timestamp": "1", "webhook-signature": "v1,short"}
    assert _errors(_validator(document, "WebhookHeaders"), signature) != []


async def test_the_description_explains_signatures_and_the_configured_retries(
    webhook_client: httpx.AsyncClient,
) -> None:
    description = (await webhook_client.get("/schema/openapi.json")).json()["info"]["description"]

    assert "## Webhooks" in description
    for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert f"`{header}`" in description
    # webhook_settings: WEBHOOK_MAX_ATTEMPTS=3, WEBHOOK_RETRY_DELAY=0.1 -> after 0.1 s, then 0.2 s.
    assert "3 attempts in all, the next one after 0.1 s, 0.2 s" in description
