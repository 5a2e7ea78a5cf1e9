"""What the OpenAPI document tells a client about the live feeds, generated from the code that serves them.

OpenAPI has no words for WebSocket messages, so the feeds are described in the document's description (rendered at
the top of ``/schema``) and their messages are added as component schemas, written by msgspec from the very structs
the sockets encode: a field added to the event struct appears in the docs without anyone touching this file.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from app.domain.orders.events import OrderEventRead
from app.events.live import (
    PING,
    POLICY_VIOLATION,
    PONG,
    REPLAY_LIMIT,
    SERVICE_RESTART,
    Pong,
    admin_order_feed,
    order_feed,
)

__all__ = ("LIVE_FEED_MESSAGES", "live_feed_description", "live_feed_schemas")

#: Every message a feed sends, in the order the description names them.
LIVE_FEED_MESSAGES: Final = (OrderEventRead, Pong)
#: The messages no HTTP operation carries. The event is the one ``GET /orders/{order_id}/events`` lists, so Litestar
#: already puts it (and ``OrderStatus``) under *Schemas*; adding msgspec's copy would define the name twice.
_SOCKET_ONLY_MESSAGES: Final = (Pong,)
_REF: Final = "#/components/schemas/{name}"


def live_feed_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of the feed messages no route documents, keyed by struct name (references into components)."""
    _, components = msgspec.json.schema_components(_SOCKET_ONLY_MESSAGES, ref_template=_REF)
    return components


def live_feed_description() -> str:
    """A Markdown section on connecting, resuming, keep-alive and close codes."""
    [path] = order_feed.paths
    [admin_path] = admin_order_feed.paths
    event, pong = (message.__name__ for message in LIVE_FEED_MESSAGES)
    fields = ", ".join(f"`{field.encode_name}`" for field in msgspec.structs.fields(OrderEventRead))
    return f"""\
## Live order events (WebSocket)

- `{path}?token=<access token>`: the caller's order events; `{admin_path}?token=<access token>`: every user's \
(needs `orders:manage`). The token is the `access_token` of `/auth/login` or `/auth/token` (a browser cannot set \
headers on a WebSocket).
- Each event arrives as one JSON text message, schema **`{event}`** (under *Schemas* below): {fields}. It has the \
shape of the entries of `GET /orders/{{order_id}}/events`.
- `?since=<event_id>`: first every event with a greater `event_id` (from the database, oldest first, at most the \
last {REPLAY_LIMIT:,}), then live ones, with no gap and no duplicate. Reconnect with the last `event_id` you saw \
and you miss nothing; `since=0` replays from the start. A `since` that is not an integer in 0..2^63-1 is \
refused like a bad token.
- A user holds at most `WS_MAX_PER_USER` sockets (default 20) across all server processes; one more is refused \
(HTTP 403 at the handshake).
- Send the text `{PING}` to check the connection: the answer is `{PONG}` (schema **`{pong}`**).
- Close codes: **{POLICY_VIOLATION}** (policy violation) when the token is missing, invalid or expired, a permission \
is missing, the user is deactivated or loses `orders:manage` (admin feed), also on an open socket (within \
seconds); **{SERVICE_RESTART}** (service restart) when the \
server shuts down: reconnect, with `since`.
"""
