"""Imports every model so the shared metadata is complete (for Alembic and the schema-equality test)."""

from __future__ import annotations

from advanced_alchemy.base import metadata_registry

from app.domain.accounts.models import (
    RefreshToken,
    RefreshTokenFamily,
    Role,
    User,
    user_roles,
)
from app.domain.addresses.models import Address
from app.domain.catalog.models import Product
from app.domain.orders.models import IdempotencyKey, Order, OrderEvent, OrderItem

__all__ = (
    "Address",
    "IdempotencyKey",
    "Order",
    "OrderEvent",
    "OrderItem",
    "Product",
    "RefreshToken",
    "RefreshTokenFamily",
    "Role",
    "User",
    "metadata",
    "user_roles",
)

metadata = metadata_registry.get(None)
