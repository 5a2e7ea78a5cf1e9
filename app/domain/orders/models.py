"""Orders, their lines, idempotency keys and the order-event outbox.

Snapshots, not references, make an order immutable history: each line stores the product's name and unit price at
the moment of purchase, and the order stores the shipping address as it was. Editing a product, archiving it or
deleting the address later changes nothing about past orders.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.base import DefaultBase, UUIDv7AuditBase, UUIDv7Base
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.orders.state_machine import OrderStatus

__all__ = ("IdempotencyKey", "Order", "OrderEvent", "OrderItem")

_STATUSES = ", ".join(f"'{s.value}'" for s in OrderStatus)


class Order(UUIDv7AuditBase):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status_known"),
        CheckConstraint("total_cents >= 0", name="total_non_negative"),
        # "My orders, newest first" (optionally by status) and the admin list, newest first.
        Index("ix_orders_user_id_created_at", "user_id", "created_at", "id"),
        Index("ix_orders_status_created_at", "status", "created_at", "id"),
        Index("ix_orders_created_at", "created_at", "id"),
        # Orders waiting for payment, oldest first: what the payment-timeout sweep reads (a small index, since
        # orders leave it when they are paid or cancelled).
        Index("ix_orders_pending_created_at", "created_at", "id", postgresql_where=text("status = 'pending'")),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PENDING.value)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    #: The address as it was when the order was placed (``AddressRead`` shape). advanced-alchemy's ``JsonB``
    #: type fails on SQLAlchemy 2.1 (it calls the removed ``util.portable_instancemethod``), hence plain JSONB.
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSONB)


class OrderItem(UUIDv7Base):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("price_cents >= 0", name="price_non_negative"),
        UniqueConstraint("order_id", "product_id", name="uq_order_items_order_id_product_id"),
    )

    # Indexed by the (order_id, product_id) unique constraint.
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"), index=True)
    #: Snapshots taken when the order was placed.
    product_name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)


class IdempotencyKey(DefaultBase):
    """One ``Idempotency-Key`` of one user: the request it answered (by hash) and the response it gave.

    The primary key decides races: concurrent requests with the same key serialise on the index entry, and only the
    first to commit creates an order. A failed request rolls back its row, so the key can be retried.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class OrderEvent(DefaultBase):
    """The transactional outbox and the order timeline in one append-only table.

    A row is written in the same transaction as the change it records, so it exists if and only if the change
    committed. ``id`` orders rows by insertion; the public ``event_id`` is assigned later, by the dispatcher, in the
    order events are published (see ``app.events.outbox``), because insertion order is not commit order.
    """

    __tablename__ = "order_events"
    __table_args__ = (
        Index("ix_order_events_order_id_id", "order_id", "id"),
        Index("ix_order_events_user_id_event_id", "user_id", "event_id"),
        Index("ix_order_events_undispatched", "id", postgresql_where=text("dispatched_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    event_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    type: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    previous_status: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    #: Why the system made the change (``payment_timeout``); null for changes people make.
    reason: Mapped[str | None] = mapped_column(String(32))
    #: Set when published to WebSocket listeners and handed to the email queue.
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    #: Set by the email job once the message was accepted by the SMTP server (makes retries idempotent).
    emailed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
