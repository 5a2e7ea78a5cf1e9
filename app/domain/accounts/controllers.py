"""Routes of ``/auth`` and ``/admin/users``. Thin: parse, call one service method, shape the response."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import (
    CookieParameter,
    FromPath,
    JSONBody,
    QueryParameter,
    URLEncodedBody,
)
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from app.config import Settings
from app.core.auth import Principal, requires_permission
from app.core.errors import AuthenticationFailed
from app.core.openapi import problems
from app.core.pagination import Page, PageNumber, PageParams, PerPage
from app.core.permissions import USERS_MANAGE
from app.core.security import PasswordHashing, TokenCodec
from app.domain.accounts.lifecycle import AccountService
from app.domain.accounts.schemas import (
    NO_NUL,
    Accepted,
    AccessToken,
    EmailVerification,
    Login,
    LoginForm,
    PasswordChange,
    PasswordForgotten,
    PasswordReset,
    ProfileUpdate,
    Registration,
    Session,
    UserRead,
    UserUpdate,
)
from app.domain.accounts.services import IssuedRefreshToken, SessionService, UserService

__all__ = (
    "AccountController",
    "AdminUserController",
    "CredentialsController",
    "PasswordRecoveryController",
    "SessionController",
)

REFRESH_COOKIE = "refresh_token"
COOKIE_PATH = "/auth"

RefreshCookie = Annotated[
    str | None,
    CookieParameter(name=REFRESH_COOKIE, description="The refresh token set by login.", required=False),
]


def _refresh_cookie(issued: IssuedRefreshToken, settings: Settings) -> Cookie:
    # The cookie lives as long as its token: at most REFRESH_TOKEN_TTL, less near the session's maximum age.
    lifetime = round((issued.expires_at - datetime.now(UTC)).total_seconds())
    return _cookie(issued.token, max(0, min(lifetime, settings.refresh_token_ttl)), settings)


def _cleared_cookie(settings: Settings) -> Cookie:
    return _cookie("", 0, settings)


def _cookie(value: str, max_age: int, settings: Settings) -> Cookie:
    """The refresh cookie, set or cleared: sent only to ``/auth``, never readable by scripts, never cross-site."""
    return Cookie(
        key=REFRESH_COOKIE,
        value=value,
        path=COOKIE_PATH,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="strict",
        max_age=max_age,
    )


def _token_response(issued: IssuedRefreshToken, tokens: TokenCodec, settings: Settings) -> Response[AccessToken]:
    body = AccessToken(
        access_token=tokens.issue(issued.user_id),
        expires_in=int(tokens.ttl.total_seconds()),
    )
    return Response(
        body,
        status_code=HTTP_200_OK,
        cookies=[_refresh_cookie(issued, settings)],
        headers={"Cache-Control": "no-store"},
    )


@dataclass(frozen=True, slots=True)
class LogIn:
    """Check email and password and start a session: the one flow behind ``/auth/login`` (JSON body) and
    ``/auth/token`` (the OAuth2 form), which differ only in how the credentials arrive."""

    users: UserService
    sessions: SessionService
    passwords: PasswordHashing
    tokens: TokenCodec
    settings: Settings

    async def __call__(self, email: str, password: str, user_agent: str | None) -> Response[AccessToken]:
        user = await self.users.authenticate(email, password, self.passwords)
        issued = await self.sessions.start(
            user.id,
            user_agent,
            timedelta(seconds=self.settings.refresh_token_ttl),
            max_age=timedelta(seconds=self.settings.refresh_session_max_age),
        )
        return _token_response(issued, self.tokens, self.settings)


def provide_log_in(
    users: NamedDependency[UserService],
    sessions: NamedDependency[SessionService],
    passwords: NamedDependency[PasswordHashing],
    tokens: NamedDependency[TokenCodec],
    settings: NamedDependency[Settings],
) -> LogIn:
    return LogIn(users, sessions, passwords, tokens, settings)


class CredentialsController(Controller):
    """Register and log in. Mounted behind the auth rate limiter (see ``app.main``)."""

    path = "/auth"
    tags = ["auth"]
    security = [{}]
    dependencies = {"log_in": Provide(provide_log_in, sync_to_thread=False)}

    @post(
        "/register",
        status_code=HTTP_201_CREATED,
        exclude_from_auth=True,
        responses=problems(409, 413, 422, 429),
    )
    async def register(
        self,
        data: JSONBody[Registration],
        users: NamedDependency[UserService],
        passwords: NamedDependency[PasswordHashing],
    ) -> UserRead:
        """Create a customer account. The email is stored lower-cased; a duplicate is 409 ``email_taken``."""
        return await users.register(data, passwords)

    @post(
        "/login",
        status_code=HTTP_200_OK,
        exclude_from_auth=True,
        responses=problems(401, 413, 422, 429),
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[Login],
        log_in: NamedDependency[LogIn],
    ) -> Response[AccessToken]:
        """Exchange email and password for an access token and a refresh cookie (a new session)."""
        return await log_in(data.email, data.password, request.headers.get("user-agent"))

    @post(
        "/token",
        status_code=HTTP_200_OK,
        exclude_from_auth=True,
        responses=problems(401, 413, 422, 429),
    )
    async def token(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[LoginForm],
        log_in: NamedDependency[LogIn],
    ) -> Response[AccessToken]:
        """OAuth2 password grant (form fields ``username`` = email, ``password``), for the docs' Authorize button."""
        return await log_in(data.username, data.password, request.headers.get("user-agent"))


class SessionController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post(
        "/refresh",
        status_code=HTTP_200_OK,
        exclude_from_auth=True,
        security=[{}],
        responses=problems(401),
    )
    async def refresh(
        self,
        refresh_token: RefreshCookie,
        sessions: NamedDependency[SessionService],
        tokens: NamedDependency[TokenCodec],
        settings: NamedDependency[Settings],
    ) -> Response[AccessToken]:
        """Rotate the refresh cookie and issue a new access token. Replaying a rotated token revokes the session."""
        if not refresh_token:
            raise AuthenticationFailed("not_authenticated", "Missing refresh token cookie")
        issued = await sessions.rotate(
            refresh_token,
            timedelta(seconds=settings.refresh_token_ttl),
            max_age=timedelta(seconds=settings.refresh_session_max_age),
        )
        return _token_response(issued, tokens, settings)

    @post(
        "/logout",
        status_code=HTTP_204_NO_CONTENT,
        exclude_from_auth=True,
        security=[{}],
        # Litestar documents a ``Response[None]`` as a JSON ``null`` body; a 204 has none.
        responses={
            HTTP_204_NO_CONTENT: ResponseSpec(None, description="Session ended, cookie cleared"),
            **problems(401),
        },
    )
    async def logout(
        self,
        refresh_token: RefreshCookie,
        sessions: NamedDependency[SessionService],
        settings: NamedDependency[Settings],
    ) -> Response[None]:
        """End the session of the refresh cookie and clear it. Repeating it is harmless."""
        if not refresh_token:
            raise AuthenticationFailed("not_authenticated", "Missing refresh token cookie")
        await sessions.end(refresh_token)
        return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=[_cleared_cookie(settings)])

    @get("/me", responses=problems(401))
    async def me(self, request: Request[Principal, Any, Any], users: NamedDependency[UserService]) -> UserRead:
        """The caller's account."""
        return await users.read(request.user.id)

    @patch("/me", responses=problems(401, 413, 422))
    async def update_me(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[ProfileUpdate],
        accounts: NamedDependency[AccountService],
    ) -> UserRead:
        """Change the caller's name (``null`` clears it); omitted fields stay as they are."""
        return await accounts.update_profile(request.user.id, data)

    @get("/sessions", responses=problems(401))
    async def list_sessions(
        self,
        request: Request[Principal, Any, Any],
        refresh_token: RefreshCookie,
        sessions: NamedDependency[SessionService],
    ) -> list[Session]:
        """The caller's active sessions, newest first; ``current`` marks the one of the refresh cookie sent."""
        current = await sessions.family_of(refresh_token)
        return await sessions.list_active(request.user.id, current)

    @delete(
        "/sessions/{session_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(401, 404),
    )
    async def revoke_session(
        self,
        request: Request[Principal, Any, Any],
        session_id: FromPath[uuid.UUID],
        sessions: NamedDependency[SessionService],
    ) -> None:
        """Revoke one of the caller's sessions: its refresh token stops working at once."""
        await sessions.revoke_for_user(request.user.id, session_id)


class AdminUserController(Controller):
    path = "/admin/users"
    tags = ["admin"]
    guards = [requires_permission(USERS_MANAGE)]

    @get("/", responses=problems(401, 403, 422))
    async def list_users(
        self,
        users: NamedDependency[UserService],
        page: PageNumber = 1,
        per_page: PerPage = 20,
        q: Annotated[
            str | None,
            QueryParameter(max_length=200, pattern=NO_NUL, description="Matches email or name."),
        ] = None,
    ) -> Page[UserRead]:
        """All users, newest first."""
        return await users.list_users(q, PageParams(page, per_page))

    @patch("/{user_id:uuid}", responses=problems(401, 403, 404, 409, 413, 422))
    async def update_user(
        self,
        request: Request[Principal, Any, Any],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[UserUpdate],
        users: NamedDependency[UserService],
    ) -> UserRead:
        """Activate/deactivate a user or replace their roles. Deactivation locks them out immediately."""
        return await users.update_user(request.user.id, user_id, data)


#: What a 400 also means on the routes that take a token from an email.
_INVALID_TOKEN: Final = {400: "Malformed JSON, wrong content type, or `invalid_token`: unknown, used or expired token"}


def _no_content(description: str) -> dict[int, ResponseSpec]:
    # Litestar documents a ``Response[None]`` as a JSON ``null`` body; a 204 has none.
    return {HTTP_204_NO_CONTENT: ResponseSpec(None, description=description)}


class AccountController(Controller):
    """The caller's own account: password and email verification (``PATCH /auth/me`` is next to ``GET``)."""

    path = "/auth"
    tags = ["auth"]

    @post(
        "/password",
        status_code=HTTP_204_NO_CONTENT,
        responses={
            **_no_content("Password changed; the caller's other sessions are revoked"),
            **problems(401, 403, 413, 422, described={403: "`invalid_credentials`: the current password is wrong"}),
        },
    )
    async def change_password(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[PasswordChange],
        refresh_token: RefreshCookie,
        accounts: NamedDependency[AccountService],
        sessions: NamedDependency[SessionService],
        passwords: NamedDependency[PasswordHashing],
    ) -> Response[None]:
        """Change the password. Every other session of the caller is revoked (the refresh cookie's stays) and
        access tokens issued before now are refused (refresh for a new one). Wrong current password: 403
        ``invalid_credentials``."""
        keep = await sessions.family_of(refresh_token)
        await accounts.change_password(request.user.id, data, passwords, keep_session=keep)
        return Response(None, status_code=HTTP_204_NO_CONTENT)

    @post(
        "/verify/request",
        status_code=HTTP_202_ACCEPTED,
        responses=problems(401, 409, described={409: "`already_verified`: the address is already verified"}),
    )
    async def request_verification(
        self, request: Request[Principal, Any, Any], accounts: NamedDependency[AccountService]
    ) -> Accepted:
        """Email the caller a one-time verification link (sent by the worker). Already verified: 409."""
        await accounts.request_verification(request.user.id)
        return Accepted()

    @post(
        "/verify",
        status_code=HTTP_204_NO_CONTENT,
        exclude_from_auth=True,
        security=[{}],
        responses={**_no_content("Email address verified"), **problems(413, 422, described=_INVALID_TOKEN)},
    )
    async def verify_email(
        self, data: JSONBody[EmailVerification], accounts: NamedDependency[AccountService]
    ) -> Response[None]:
        """Verify the account's email address with the token from the verification email (single use).
        Unknown, used or expired token: 400 ``invalid_token``."""
        await accounts.verify_email(data.token)
        return Response(None, status_code=HTTP_204_NO_CONTENT)


class PasswordRecoveryController(Controller):
    """Forgotten passwords. Mounted behind the auth rate limiter with login and register (see ``app.main``)."""

    path = "/auth/password"
    tags = ["auth"]
    security = [{}]

    @post(
        "/forgot",
        status_code=HTTP_202_ACCEPTED,
        exclude_from_auth=True,
        responses=problems(413, 422, 429),
    )
    async def forgot_password(
        self, data: JSONBody[PasswordForgotten], accounts: NamedDependency[AccountService]
    ) -> Accepted:
        """Email a one-time reset link to the account with this address, if there is an active one. The answer is
        the same ``{}`` either way, and the request does the same work (it queues the email; the worker looks the
        account up)."""
        await accounts.request_password_reset(data.email)
        return Accepted()

    @post(
        "/reset",
        status_code=HTTP_204_NO_CONTENT,
        exclude_from_auth=True,
        responses={
            **_no_content("Password changed; every session of the user is revoked"),
            **problems(413, 422, 429, described=_INVALID_TOKEN),
        },
    )
    async def reset_password(
        self,
        data: JSONBody[PasswordReset],
        accounts: NamedDependency[AccountService],
        passwords: NamedDependency[PasswordHashing],
    ) -> Response[None]:
        """Set a new password with the token from the reset email (single use). Every session of the user and every
        other reset token end, and access tokens issued before now are refused. Unknown, used or expired token: 400
        ``invalid_token``."""
        await accounts.reset_password(data, passwords)
        return Response(None, status_code=HTTP_204_NO_CONTENT)
