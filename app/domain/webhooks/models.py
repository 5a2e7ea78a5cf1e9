"""Webhook endpoints and their deliveries.

An endpoint keeps a cursor, ``last_event_id``: the public ``event_id`` up to which its deliveries have been created.
Event ids become visible in one gap-free sequence (the outbox assigns them in one statement per batch, under its
lock), so "every event with an id above the cursor" is exactly what the endpoint has not been given yet, and a
delivery row exists for an event if and only if the event committed. Deliveries are rows, not only queue jobs:
retries are scheduled by ``next_attempt_at`` in the database, so a Redis or worker outage delays them and loses none.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from advanced_alchemy.base import UUIDv7AuditBase, UUIDv7Base
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ("WebhookDelivery", "WebhookEndpoint")


class WebhookEndpoint(UUIDv7AuditBase):
    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    description: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    #: ``whsec_<base64>``; kept in clear because signing needs it (it is never returned after creation/rotation).
    secret: Mapped[str] = mapped_column(String(100))
    #: The secret replaced by the last rotation, still signing (next to the new one) until ``previous_secret_until``.
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    #: The highest ``event_id`` whose delivery (if subscribed) has been created; see the module docstring.
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    #: Deliveries that failed for good since the last success (the circuit breaker's count).
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class WebhookDelivery(UUIDv7Base):
    """One event to one endpoint; its ``id`` is the ``webhook-id`` header of every attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_row_id"),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
        Index("ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", "created_at", "event_id"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_row_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("order_events.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    #: Attempts allowed in all: ``WEBHOOK_MAX_ATTEMPTS`` at creation; a redelivery allows one more.
    attempt_limit: Mapped[int] = mapped_column(Integer)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    #: Set while a queued job owns the next attempt; an attempt whose worker died is taken again once it passes.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    #: An admin asked for one more attempt: made even if the endpoint is inactive.
    redeliver_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
