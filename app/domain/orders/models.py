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

__all__ = ("IdempotencyKey", "Order", "OrderCount", "OrderEvent", "OrderItem")

_STATUSES = ", ".join(f"'{s.value}'" for s in OrderStatus)


class Order(UUIDv7AuditBase):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status_known"),
        CheckConstraint("total_cents >= 0", name="total_non_negative"),
        # Every order list, newest first, with each filter: the page is read from the index alone (see
        # ``OrderService.list_orders``). Built CONCURRENTLY by its own migration: ix_orders_user_id_status_created_at.
        Index("ix_orders_user_id_created_at", "user_id", "created_at", "id"),
        Index("ix_orders_user_id_status_created_at", "user_id", "status", "created_at", "id"),
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


class OrderCount(DefaultBase):
    """How many orders each user has in each status: the exact ``total`` of every order list, without counting.

    Maintained by statement-level triggers on ``orders`` (migration ``0009_order_counts``), in the transaction of the
    write that changes the orders, whatever wrote them: the API's statements, the seed's COPY, a job, or psql. So it
    is never stale and never an estimate. Counting instead cost 100-250 ms per list request at a million orders.

    Keyed per user, not one global row per status, so that concurrent orders of different users never wait for each
    other on a counter row; the admin totals add up one row per user and status (5,000 rows for 1,000 users: ~1 ms).
    """

    __tablename__ = "order_counts"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    orders: Mapped[int] = mapped_column(BigInteger)


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
