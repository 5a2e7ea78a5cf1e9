"""Dependency providers for services: one plain function per service type, declared once per domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.services import Service

__all__ = ("provide_service", "request_session")

ServiceT = TypeVar("ServiceT", bound=Service[Any])


def provide_service(service_type: type[ServiceT]) -> Provide:
    """Provide ``service_type`` with the request's session, created only if the service uses it.

    A plain function, not advanced-alchemy's async-generator provider: the session is closed by the SQLAlchemy
    plugin when the response is sent, so there is nothing to clean up, and any generator dependency makes Litestar
    open an anyio task group on every request just to run its (empty) cleanup — measurable on the hot reads. Nor does
    it depend on ``db_session``: that builds a session (and a ``State`` copy for the plugin's provider) on every
    request, also for the reads that only run prepared statements on the direct pool.
    """

    def provider(request: Request[Any, Any, Any]) -> ServiceT:
        return service_type(session=request_session(request), direct=request.app.state.components.direct)

    provider.__annotations__ = {"request": Request[Any, Any, Any], "return": service_type}
    provider.__name__ = f"provide_{service_type.__name__}"
    return Provide(provider, sync_to_thread=False)


def request_session(connection: ASGIConnection[Any, Any, Any, Any]) -> Callable[[], AsyncSession]:
    """A factory for the connection's session: advanced-alchemy's, kept in the scope, so it is the same one
    ``db_session`` gives and the plugin closes (commits or rolls back) it after the response."""
    app = connection.app

    def session() -> AsyncSession:
        alchemy: SQLAlchemyAsyncConfig = app.state.components.alchemy
        return alchemy.provide_session(app.state, connection.scope)

    return session
