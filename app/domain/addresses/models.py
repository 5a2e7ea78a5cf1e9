"""Shipping addresses of users.

Deleting an address is a soft delete (``deleted_at``): the row stays, so anything that refers to it (an order's
``shipping_address_id``) keeps pointing at a real row, while the owner no longer sees it. Orders also snapshot the
address when they are placed, so editing or deleting an address never changes a past order.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ("Address",)


class Address(UUIDv7AuditBase):
    __tablename__ = "addresses"
    __table_args__ = (CheckConstraint("country ~ '^[A-Z]{2}$'", name="country_alpha2"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    recipient_name: Mapped[str] = mapped_column(String(200))
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    phone: Mapped[str | None] = mapped_column(String(32))
    #: Set when the owner deletes the address; such rows are invisible through the API.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
