"""Request and response bodies of ``/admin/webhooks``, and the message a receiver gets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

from app.domain.orders.events import OrderEventRead

__all__ = (
    "EVENT_TYPES",
    "DeliveryRead",
    "EndpointCreate",
    "EndpointRead",
    "EndpointUpdate",
    "EndpointWithSecret",
    "EventType",
    "WebhookHeaders",
    "WebhookMessage",
)

EventType = Literal["order_created", "order_status_changed"]
EVENT_TYPES: Final[tuple[str, ...]] = ("order_created", "order_status_changed")

Url = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=2048,
        pattern=r"^[^\s\x00-\x1f\x7f]+$",
        description="https:// URL of a public host (http:// and private hosts only where the server allows them).",
        examples=["https://erp.example.com/hooks/orders"],
    ),
]
EventTypes = Annotated[
    list[EventType],
    msgspec.Meta(min_length=1, max_length=2, description="Events to receive; default both."),
]
Description = Annotated[str, msgspec.Meta(max_length=500, pattern=r"^[^\x00]*$")]


class EndpointCreate(msgspec.Struct, forbid_unknown_fields=True):
    url: Url
    event_types: EventTypes = msgspec.field(default_factory=lambda: list(EVENT_TYPES))  # type: ignore[arg-type]
    description: Description | None = None


class EndpointUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Any subset; ``is_active: true`` re-activates (and clears ``disabled_reason``); ``description: null`` clears."""

    url: Url | msgspec.UnsetType = msgspec.UNSET
    event_types: EventTypes | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET


class _Endpoint(msgspec.Struct):
    """The fields both answers share. Neither answer derives from the other, so a type checker refuses an
    ``EndpointWithSecret`` where an ``EndpointRead`` is declared: the secret cannot leak into a read by mistake."""

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    is_active: bool
    disabled_reason: str | None
    created_at: datetime


class EndpointRead(_Endpoint):
    pass


class EndpointWithSecret(_Endpoint):
    """An endpoint with its signing secret: the answer to creation and rotation, and only to them."""

    secret: str


class DeliveryRead(msgspec.Struct):
    """One event sent (or being sent) to one endpoint. ``next_attempt_at`` is null once it succeeded or failed."""

    id: uuid.UUID
    event_id: int
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookMessage(msgspec.Struct):
    """The body POSTed to a receiver: ``data`` is the event exactly as WebSocket listeners get it."""

    type: Annotated[EventType, msgspec.Meta(description="The event's type (the same as `data.type`).")]
    timestamp: Annotated[datetime, msgspec.Meta(description="When the event happened (the same as `data.at`).")]
    data: OrderEventRead


#: ``v1,<base64 HMAC-SHA256>``; two of them, space-separated, while a rotated-out secret is still valid.
_SIGNATURES: Final = r"^v1,[A-Za-z0-9+/]{43}=( v1,[A-Za-z0-9+/]{43}=)?$"


class WebhookHeaders(msgspec.Struct, rename="kebab"):
    """The Standard Webhooks headers of every webhook request (besides ``content-type: application/json``)."""

    webhook_id: Annotated[
        str,
        msgspec.Meta(
            description="The delivery's id: the same on every retry and redelivery of one event to one endpoint. "
            "De-duplicate on it.",
            examples=["3f2b8c1e-4f5a-4c2e-9a7d-0b1c2d3e4f50"],
        ),
    ]
    webhook_timestamp: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^[0-9]{1,19}$",
            description="Unix seconds when this attempt was signed (refuse messages too far from your clock).",
            examples=["1796300000"],
        ),
    ]
    webhook_signature: Annotated[
        str,
        msgspec.Meta(
            pattern=_SIGNATURES,
            description="`v1,` + base64(HMAC-SHA256(base64-decoded secret after `whsec_`, "
            "`{webhook-id}.{webhook-timestamp}.{raw body}`)). For 24 h after a secret rotation, two signatures "
            "separated by a space, one per secret: accept the message if any one matches.",
            examples=["v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="],
        ),
    ]
