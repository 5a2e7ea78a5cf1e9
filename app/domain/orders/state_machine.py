"""The order status machine, as one table.

    pending → paid → shipped → delivered
    pending → cancelled,  paid → cancelled

``delivered`` and ``cancelled`` are final. Every status change in the code base asks :func:`can_transition`; there
is no other place that decides.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = (
    "FINAL_STATUSES",
    "PAYMENT_TIMEOUT",
    "RESTOCKING_STATUSES",
    "TRANSITIONS",
    "OrderStatus",
    "can_transition",
)


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


TRANSITIONS: Final[dict[OrderStatus, frozenset[OrderStatus]]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}

FINAL_STATUSES: Final = frozenset(status for status, targets in TRANSITIONS.items() if not targets)

#: Entering one of these statuses gives the order's units back to stock.
RESTOCKING_STATUSES: Final = frozenset({OrderStatus.CANCELLED})

#: The ``reason`` of a change the system made on its own: a ``pending`` order cancelled because its payment window
#: (``ORDER_PAYMENT_TTL``) ran out. Changes people make have no reason (null).
PAYMENT_TIMEOUT: Final = "payment_timeout"


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]
