"""The one shape of an order event, owned here: its struct, its columns, and the mapping from a row.

The outbox publishes it, the WebSocket feeds send and replay it, ``GET /orders/{id}/events`` lists it, and the
OpenAPI document describes it: all from :class:`~app.domain.orders.schemas.OrderEventRead` and :data:`EVENT_COLUMNS`,
so a field added here reaches every one of them (and a column renamed in the model breaks them all at once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy.sql.elements import KeyedColumnElement

from app.domain.orders.models import OrderEvent
from app.domain.orders.schemas import OrderEventRead

__all__ = ("EVENT_COLUMNS", "OrderEventRead", "event_from_row")

#: The ``order_events`` columns of :class:`OrderEventRead`, in its field order (the field names are the columns').
EVENT_COLUMNS: Final[tuple[KeyedColumnElement[Any], ...]] = tuple(
    OrderEvent.__table__.c[name] for name in OrderEventRead.__struct_fields__
)


def event_from_row(row: Mapping[Any, Any]) -> OrderEventRead:
    """The event of a row that holds :data:`EVENT_COLUMNS` (an asyncpg record or a SQLAlchemy row's mapping).

    Statuses stay the strings the row holds: they encode exactly as the enum would, and the timeline and the feeds
    only encode them.
    """
    return OrderEventRead(*(row[name] for name in OrderEventRead.__struct_fields__))
