"""What the OpenAPI document tells a webhook receiver, generated from the structs the sender encodes.

Litestar 2.25 builds OpenAPI 3.1 documents without the ``webhooks`` object, so, as for the WebSocket feeds
(``app.events.live_docs``), a Markdown section goes into the document's description and the message and its headers
become component schemas, written by msgspec from :class:`WebhookMessage` (whose ``data`` is the very
``OrderEventRead`` of the WebSocket feeds) and :class:`WebhookHeaders` (which the sender fills in): a field added to
either appears in the docs without anyone touching this file. The retry schedule is computed from the running
configuration with the sender's own :func:`retry_delay`.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from app.config import Settings
from app.domain.webhooks.schemas import WebhookHeaders, WebhookMessage
from app.domain.webhooks.services import ROTATION_OVERLAP
from app.events.webhooks import ATTEMPT_TIMEOUT_S, retry_delay

__all__ = ("WEBHOOK_DOCUMENTED", "webhook_description", "webhook_schemas")

#: The structs a receiver meets, in the order the description names them.
WEBHOOK_DOCUMENTED: Final = (WebhookMessage, WebhookHeaders)
_REF: Final = "#/components/schemas/{name}"
_DOCUMENTED_BY_ROUTES: Final = frozenset({"OrderEventRead", "OrderStatus"})


def webhook_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of the body and the headers, keyed by struct name.

    The event they embed (``OrderEventRead``, with ``OrderStatus``) is the one ``GET /orders/{order_id}/events``
    lists, which Litestar already documents under the same names: it is referenced, not defined twice.
    """
    _, components = msgspec.json.schema_components(WEBHOOK_DOCUMENTED, ref_template=_REF)
    return {name: schema for name, schema in components.items() if name not in _DOCUMENTED_BY_ROUTES}


def _seconds(value: float) -> str:
    return f"{value:g} s" if value < 120 else f"{value / 60:g} min" if value < 7200 else f"{value / 3600:g} h"


def webhook_description(settings: Settings) -> str:
    """A Markdown section on what a receiver gets, how to verify it, and when it is retried (with ``settings``)."""
    message, headers = (struct.__name__ for struct in WEBHOOK_DOCUMENTED)
    names = ", ".join(f"`{field.encode_name}`" for field in msgspec.structs.fields(WebhookHeaders))
    attempts = settings.webhook_max_attempts
    delays = [retry_delay(settings.webhook_retry_delay, n) for n in range(1, attempts)]
    schedule = ", ".join(_seconds(delay) for delay in delays) or "none"
    overlap_h = ROTATION_OVERLAP.total_seconds() / 3600
    return f"""\
## Webhooks (server-to-server push)

Endpoints subscribed under `/admin/webhooks` (permission `webhooks:manage`) receive each order event committed \
after they were created, as `POST <url>` with `content-type: application/json`, signed per \
[Standard Webhooks](https://www.standardwebhooks.com).
- Body: schema **`{message}`** (under *Schemas* below): `type`, `timestamp` and `data`, the event exactly as the \
WebSocket feeds send it.
- Headers: schema **`{headers}`**: {names}. Verify with any Standard Webhooks library and the `whsec_…` secret \
shown once at creation or rotation. For {overlap_h:g} h after `rotate-secret` the signature header holds two \
signatures, space-separated (new and previous secret): accept the message if one matches.
- `webhook-id` stays the same on every retry and redelivery: de-duplicate on it. Retries can overtake: order by \
`data.event_id`.
- Success is a 2xx answer within {ATTEMPT_TIMEOUT_S:g} s; redirects are not followed. Anything else is retried, \
{attempts} attempts in all, the next one after {schedule}; then the delivery is `failed`. After \
{settings.webhook_disable_after} deliveries in a row failed for good the endpoint is deactivated and the admins are \
emailed.
"""
