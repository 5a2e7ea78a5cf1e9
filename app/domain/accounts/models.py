"""Users, roles and refresh-token families.

Roles are keyed by name and carry their permissions; guards check permissions, never role names, so granting
``staff`` a new permission is a data change, not a code change. Refresh tokens are grouped in families (one per
login): rotation adds a token to the family, and presenting a token that was already rotated revokes the family.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from advanced_alchemy.base import DefaultBase, UUIDv7AuditBase, UUIDv7Base
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Boolean, Column, ForeignKey, String, Table, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

__all__ = ("RefreshToken", "RefreshTokenFamily", "Role", "User", "user_roles")

user_roles = Table(
    "user_roles",
    DefaultBase.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "role_name",
        ForeignKey("roles.name", ondelete="CASCADE", onupdate="CASCADE"),
        primary_key=True,
    ),
)


class Role(DefaultBase):
    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    permissions: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list, server_default=text("'{}'"))


class User(UUIDv7AuditBase):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="raise", order_by=Role.name)


class RefreshTokenFamily(UUIDv7Base):
    """One login session: every refresh token rotated from the same login belongs to it."""

    __tablename__ = "refresh_token_families"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    last_used_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    #: Expiry of the family's newest token; the session is listed as active until then (and purged after).
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(UUIDv7Base):
    """A single refresh token; only its SHA-256 is stored. ``rotated_at`` is set once it has been exchanged."""

    __tablename__ = "refresh_tokens"

    family_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("refresh_token_families.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    #: Indexed for the worker's purge of expired tokens (``SessionService.purge_ended``).
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    rotated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
