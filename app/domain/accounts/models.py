"""Users, roles and refresh-token families.

Roles are keyed by name and carry their permissions; guards check permissions, never role names, so granting
``staff`` a new permission is a data change, not a code change. Refresh tokens are grouped in families (one per
login): rotation adds a token to the family, and presenting a token that was already rotated revokes the family.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final, Literal

from advanced_alchemy.base import DefaultBase, UUIDv7AuditBase, UUIDv7Base
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Identity, Index, String, Table, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

__all__ = (
    "EMAIL_VERIFICATION",
    "PASSWORD_RESET",
    "AccountEmail",
    "AccountToken",
    "RefreshToken",
    "RefreshTokenFamily",
    "Role",
    "TokenPurpose",
    "User",
    "user_roles",
)

#: What a one-time token (and its email) is for.
TokenPurpose = Literal["password_reset", "email_verification"]
PASSWORD_RESET: Final = "password_reset"
EMAIL_VERIFICATION: Final = "email_verification"

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
    #: Set by ``POST /auth/verify`` (or a password reset, which proves the same thing: the mailbox is theirs).
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    #: Access tokens issued before this are refused, and sockets opened with them are closed.
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
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


class AccountToken(UUIDv7Base):
    """A one-time password-reset or email-verification token; only its SHA-256 is stored.

    ``used_at`` is set once, by a conditional ``UPDATE … WHERE used_at IS NULL``: of two simultaneous uses, exactly one
    matches. Ending a user's reset tokens (after a reset or a password change) sets it too.
    """

    __tablename__ = "account_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))  # "password_reset" | "email_verification"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class AccountEmail(DefaultBase):
    """Outbox of account emails (reset, verification), written in the request's transaction, sent by the worker.

    A row says only *what* to send: the worker makes the token when it sends the message, so the raw token exists
    nowhere but in the email (and no row holds a usable secret). ``email`` is what ``forgot`` was given: the request
    does not look the account up, so every ``forgot`` does the same work whether or not the account exists.
    """

    __tablename__ = "account_emails"
    __table_args__ = (Index("ix_account_emails_unsent", "id", postgresql_where=text("sent_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # "password_reset" | "email_verification"
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=text("now()"))
    #: When the relay last handed it to the queue (a row left unsent long after is handed over again).
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    #: When it was done with: sent, or dropped because no active account matched.
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(16))  # "sent" | "dropped"
