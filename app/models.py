"""Imports every model so the shared metadata is complete (for Alembic and the schema-equality test)."""

from __future__ import annotations

from advanced_alchemy.base import metadata_registry

from app.domain.accounts.models import (
    AccountEmail,
    AccountToken,
    RefreshToken,
    RefreshTokenFamily,
    Role,
    User,
    user_roles,
)
from app.domain.addresses.models import Address
from app.domain.catalog.models import Product
from app.domain.orders.models import IdempotencyKey, Order, OrderCount, OrderEvent, OrderItem
from app.domain.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = (
    "AccountEmail",
    "AccountToken",
    "Address",
    "IdempotencyKey",
    "Order",
    "OrderCount",
    "OrderEvent",
    "OrderItem",
    "Product",
    "RefreshToken",
    "RefreshTokenFamily",
    "Role",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "metadata",
    "user_roles",
)

metadata = metadata_registry.get(None)
