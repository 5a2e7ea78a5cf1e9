"""Request and response bodies of ``/orders`` and ``/admin/orders``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from app.domain.orders.state_machine import OrderStatus

__all__ = (
    "MAX_LINES",
    "MAX_QUANTITY",
    "OrderCreate",
    "OrderEventRead",
    "OrderItemRead",
    "OrderLine",
    "OrderRead",
    "StatusChange",
    "format_usd",
)

MAX_LINES = 50
MAX_QUANTITY = 100


class OrderLine(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    product_id: uuid.UUID
    quantity: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY, description=f"1..{MAX_QUANTITY}")]


class OrderCreate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    items: Annotated[
        list[OrderLine],
        msgspec.Meta(min_length=1, max_length=MAX_LINES, description="Each product at most once."),
    ]
    shipping_address_id: uuid.UUID


class StatusChange(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    status: OrderStatus


class OrderItemRead(msgspec.Struct):
    id: uuid.UUID
    product_id: uuid.UUID
    product_name: str
    quantity: int
    price_cents: int
    line_total_cents: int


class OrderRead(msgspec.Struct):
    id: uuid.UUID
    user_id: uuid.UUID
    status: OrderStatus
    items: list[OrderItemRead]
    shipping_address: dict[str, Any]
    total_cents: int
    total_usd: str
    created_at: datetime
    updated_at: datetime


class OrderEventRead(msgspec.Struct, frozen=True):
    """The public order event: as published to WebSocket listeners, replayed to them, and listed in a timeline.

    Its columns and row mapping are in ``app.domain.orders.events``.
    """

    event_id: int
    type: str
    order_id: uuid.UUID
    user_id: uuid.UUID
    status: OrderStatus
    previous_status: OrderStatus | None
    at: datetime
    #: ``"payment_timeout"`` for a cancellation by the system; null for every change a person made.
    reason: str | None


def format_usd(cents: int) -> str:
    """Integer cents as a decimal string with two places: 4000 → "40.00"."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"
