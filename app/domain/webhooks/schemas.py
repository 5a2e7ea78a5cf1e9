"""Request and response bodies of ``/admin/webhooks``, and the message a receiver gets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec

__all__ = (
    "EVENT_TYPES",
    "DeliveryRead",
    "EndpointCreate",
    "EndpointRead",
    "EndpointUpdate",
    "EndpointWithSecret",
    "EventType",
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


class EndpointRead(msgspec.Struct):
    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    is_active: bool
    disabled_reason: str | None
    created_at: datetime


class EndpointWithSecret(msgspec.Struct):
    """An endpoint with its signing secret: the answer to creation and rotation, and only to them."""

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    is_active: bool
    disabled_reason: str | None
    created_at: datetime
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

    type: str
    timestamp: datetime
    data: Any
