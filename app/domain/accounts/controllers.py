"""Routes of ``/auth`` and ``/admin/users``. Thin: parse, call one service method, shape the response."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import (
    CookieParameter,
    FromPath,
    JSONBody,
    QueryParameter,
    URLEncodedBody,
)
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from app.config import Settings
from app.core.auth import Principal, requires_permission
from app.core.errors import AuthenticationFailed
from app.core.openapi import problems
from app.core.pagination import Page, PageNumber, PageParams, PerPage
from app.core.permissions import USERS_MANAGE
from app.core.security import PasswordHashing, TokenCodec
from app.domain.accounts.schemas import (
    NO_NUL,
    AccessToken,
    Login,
    LoginForm,
    Registration,
    Session,
    UserRead,
    UserUpdate,
)
from app.domain.accounts.services import IssuedRefreshToken, SessionService, UserService

__all__ = ("AdminUserController", "CredentialsController", "SessionController")

REFRESH_COOKIE = "refresh_token"
COOKIE_PATH = "/auth"

RefreshCookie = Annotated[
    str | None,
    CookieParameter(name=REFRESH_COOKIE, description="The refresh token set by login.", required=False),
]


def _refresh_cookie(issued: IssuedRefreshToken, settings: Settings) -> Cookie:
    return Cookie(
        key=REFRESH_COOKIE,
        value=issued.token,
        path=COOKIE_PATH,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="strict",
        max_age=settings.refresh_token_ttl,
    )


def _cleared_cookie(settings: Settings) -> Cookie:
    return Cookie(
        key=REFRESH_COOKIE,
        value="",
        path=COOKIE_PATH,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="strict",
        max_age=0,
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


class CredentialsController(Controller):
    """Register and log in. Mounted behind the auth rate limiter (see ``app.main``)."""

    path = "/auth"
    tags = ["auth"]
    security = [{}]

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
        users: NamedDependency[UserService],
        sessions: NamedDependency[SessionService],
        passwords: NamedDependency[PasswordHashing],
        tokens: NamedDependency[TokenCodec],
        settings: NamedDependency[Settings],
    ) -> Response[AccessToken]:
        """Exchange email and password for an access token and a refresh cookie (a new session)."""
        user = await users.authenticate(data.email, data.password, passwords)
        issued = await sessions.start(
            user.id,
            request.headers.get("user-agent"),
            timedelta(seconds=settings.refresh_token_ttl),
        )
        return _token_response(issued, tokens, settings)

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
        users: NamedDependency[UserService],
        sessions: NamedDependency[SessionService],
        passwords: NamedDependency[PasswordHashing],
        tokens: NamedDependency[TokenCodec],
        settings: NamedDependency[Settings],
    ) -> Response[AccessToken]:
        """OAuth2 password grant (form fields ``username`` = email, ``password``), for the docs' Authorize button."""
        user = await users.authenticate(data.username, data.password, passwords)
        issued = await sessions.start(
            user.id,
            request.headers.get("user-agent"),
            timedelta(seconds=settings.refresh_token_ttl),
        )
        return _token_response(issued, tokens, settings)


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
        issued = await sessions.rotate(refresh_token, timedelta(seconds=settings.refresh_token_ttl))
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
