"""Request and response bodies of the auth and admin-user routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

__all__ = (
    "AccessToken",
    "Login",
    "LoginForm",
    "Registration",
    "RoleName",
    "Session",
    "UserRead",
    "UserUpdate",
)

RoleName = Literal["customer", "staff", "admin"]

Email = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=320,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Email address; stored lower-cased.",
        examples=["ada@example.com"],
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=128, description="8 to 128 characters.")]


class Registration(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    full_name: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class Login(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
    # Login accepts any length up to the maximum: a shorter-than-policy password is simply wrong (401), not invalid.
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class LoginForm(msgspec.Struct):
    """OAuth2 password-grant form (``username`` is the email), as sent by the OpenAPI UI's Authorize button."""

    username: Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    grant_type: str | None = None
    scope: str | None = None
    client_id: str | None = None
    client_secret: str | None = None


class AccessToken(msgspec.Struct):
    access_token: str
    expires_in: int
    token_type: str = "bearer"


class UserRead(msgspec.Struct):
    id: uuid.UUID
    email: str
    full_name: str | None
    is_active: bool
    roles: list[str]
    permissions: list[str]
    created_at: datetime


class UserUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Admin change to a user; omitted fields stay as they are."""

    is_active: bool | msgspec.UnsetType = msgspec.UNSET
    roles: Annotated[list[RoleName], msgspec.Meta(min_length=1, max_length=3)] | msgspec.UnsetType = msgspec.UNSET


class Session(msgspec.Struct):
    """An active login (refresh-token family) of the caller."""

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None
    current: bool
