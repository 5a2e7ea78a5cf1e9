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

__all__ = (
    "RefreshToken",
    "RefreshTokenFamily",
    "Role",
    "User",
    "metadata",
    "user_roles",
)

metadata = metadata_registry.get(None)
