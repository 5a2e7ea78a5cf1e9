"""Request and response bodies of the auth and admin-user routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

__all__ = (
    "NO_NUL",
    "Accepted",
    "AccessToken",
    "EmailVerification",
    "Login",
    "LoginForm",
    "PasswordChange",
    "PasswordForgotten",
    "PasswordReset",
    "ProfileUpdate",
    "Registration",
    "RoleName",
    "Session",
    "UserRead",
    "UserUpdate",
)

RoleName = Literal["customer", "staff", "admin"]

#: PostgreSQL text cannot hold NUL; refusing it here makes it a documented 422 rather than a database error.
NO_NUL = r"^[^\x00]*$"

#: Characters that may not appear in a dot-atom (RFC 5322 specials, whitespace, controls). \x85 and \ufeff are spelled
#: out because Python's \s (the check) and JSON Schema's (the documented pattern) disagree on them.
_NOT_ATOM: Final = r'\s\x00-\x1f\x7f\x85\ufeff"(),.:;<>@\[\\\]'
_ATOM: Final = f"[^{_NOT_ATOM}]+"

Email = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=320,
        # One plain local@domain: a dot-atom, "@", and dot-separated labels with at least one dot. The services run
        # the full check (app.core.email_address); this pattern documents the shape and refuses most bad forms early.
        pattern=f"^{_ATOM}(\\.{_ATOM})*@{_ATOM}(\\.{_ATOM})+$",
        description="One plain address (local@domain: no display name, comment, quotes or spaces); stored lower-case.",
        examples=["ada@example.com"],
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=128, description="8 to 128 characters.")]


class Registration(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    full_name: Annotated[str, msgspec.Meta(max_length=200, pattern=NO_NUL)] | None = None


class Login(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=320, pattern=NO_NUL)]
    # Login accepts any length up to the maximum: a shorter-than-policy password is simply wrong (401), not invalid.
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class LoginForm(msgspec.Struct):
    """OAuth2 password-grant form (``username`` is the email), as sent by the OpenAPI UI's Authorize button."""

    username: Annotated[str, msgspec.Meta(min_length=1, max_length=320, pattern=NO_NUL)]
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
    email_verified: bool
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


# ------------------------------------------------------------------------------------------ account lifecycle

FullName = Annotated[str, msgspec.Meta(max_length=200, pattern=NO_NUL)]
#: What the caller types as their current password: any length up to the maximum (a wrong one is 403, not 422).
CurrentPassword = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
#: A token from an email. Anything that is not a live token (malformed included) is 400 ``invalid_token``.
OneTimeToken = Annotated[
    str, msgspec.Meta(min_length=1, max_length=512, pattern=NO_NUL, description="The token from the email's link.")
]


class ProfileUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The caller's change to their own account; omitted fields stay as they are, ``null`` clears the name."""

    full_name: FullName | msgspec.UnsetType | None = msgspec.UNSET


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    current_password: CurrentPassword
    new_password: Password


class PasswordForgotten(msgspec.Struct, forbid_unknown_fields=True):
    email: Email


class PasswordReset(msgspec.Struct, forbid_unknown_fields=True):
    token: OneTimeToken
    new_password: Password


class EmailVerification(msgspec.Struct, forbid_unknown_fields=True):
    token: OneTimeToken


class Accepted(msgspec.Struct):
    """``{}``: the request is accepted; the email, if any, is sent by the worker."""
