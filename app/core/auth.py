"""Bearer-token authentication and permission guards.

The middleware only decodes the access token; who the token belongs to, and whether that account may still act, is
asked of ``load_principal`` (provided by the accounts domain) on every request, because the contract requires a
deactivated user to be locked out at once, not when their token expires.

The OpenAPI document advertises an OAuth2 password flow whose token URL is ``/auth/token``, so the docs UI's
*Authorize* button logs in with a form and then sends ``Authorization: Bearer …`` like any client.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec
from litestar.enums import ScopeType
from litestar.middleware.authentication import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
)
from litestar.middleware.base import DefineMiddleware
from litestar.openapi.spec import (
    Components,
    OAuthFlow,
    OAuthFlows,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.security.base import AbstractSecurityConfig

from app.core.errors import AuthenticationFailed, DomainError
from app.core.security import AccessTokenClaims, InvalidTokenError, TokenCodec

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import ASGIApp, Guard

__all__ = (
    "BearerAuth",
    "Principal",
    "PrincipalLoader",
    "bearer_token",
    "requires_permission",
)

SCHEME_NAME: Final = "OAuth2PasswordBearer"


class Principal(msgspec.Struct, frozen=True):
    """The authenticated caller, as loaded for this request."""

    id: uuid.UUID
    email: str
    roles: tuple[str, ...]
    permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        return permission in self.permissions


PrincipalLoader = Callable[[AccessTokenClaims, "ASGIConnection[Any, Any, Any, Any]"], Awaitable[Principal | None]]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None when absent or another scheme."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    def __init__(
        self,
        app: ASGIApp,
        *,
        codec: TokenCodec,
        load_principal: PrincipalLoader,
        exclude: str | list[str] | None,
        exclude_opt_key: str,
    ) -> None:
        super().__init__(
            app=app,
            exclude=exclude,
            exclude_from_auth_key=exclude_opt_key,
            scopes={ScopeType.HTTP},
        )
        self.codec = codec
        self.load_principal = load_principal

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        claims = authenticate(connection.headers.get("authorization"), self.codec)
        principal = await self.load_principal(claims, connection)
        if principal is None:
            raise AuthenticationFailed(
                "invalid_token", "The account no longer exists or is deactivated, or its password has changed"
            )
        return AuthenticationResult(user=principal, auth=claims)


def authenticate(authorization: str | None, codec: TokenCodec) -> AccessTokenClaims:
    token = bearer_token(authorization)
    if token is None:
        raise AuthenticationFailed("not_authenticated", "Missing bearer token")
    try:
        return codec.verify(token)
    except InvalidTokenError:
        raise AuthenticationFailed("invalid_token", "The access token is invalid or expired") from None


@dataclass
class BearerAuth(AbstractSecurityConfig[Principal, AccessTokenClaims]):
    """Wires the middleware and the OpenAPI security scheme into the app (``on_app_init=[auth.on_app_init]``)."""

    codec: TokenCodec = field(kw_only=True)
    load_principal: PrincipalLoader = field(kw_only=True)
    token_url: str = "/auth/token"
    exclude: str | list[str] | None = None
    retrieve_user_handler: Callable[[Any, Any], Any] = field(default=lambda *_: None)
    authentication_middleware_class: type[AbstractAuthenticationMiddleware] = BearerTokenMiddleware

    @property
    def middleware(self) -> DefineMiddleware:
        return DefineMiddleware(
            BearerTokenMiddleware,
            codec=self.codec,
            load_principal=self.load_principal,
            exclude=self.exclude,
            exclude_opt_key=self.exclude_opt_key,
        )

    @property
    def openapi_components(self) -> Components:
        return Components(
            security_schemes={
                SCHEME_NAME: SecurityScheme(
                    type="oauth2",
                    description="Log in at /auth/token (form) or /auth/login (JSON); send the access token as Bearer.",
                    flows=OAuthFlows(password=OAuthFlow(token_url=self.token_url, scopes={})),
                )
            }
        )

    @property
    def security_requirement(self) -> SecurityRequirement:
        return {SCHEME_NAME: []}


def requires_permission(permission: str) -> Guard:
    """A guard that lets the request through only if the caller holds ``permission`` (403 otherwise)."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        user = connection.scope.get("user")
        if not isinstance(user, Principal):
            raise AuthenticationFailed()
        if not user.can(permission):
            raise DomainError(
                "permission_denied",
                f"Permission required: {permission}",
                status_code=403,
            )

    guard.__name__ = f"requires_{permission.replace(':', '_')}"
    return guard
