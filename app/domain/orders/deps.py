"""Dependency providers of the orders domain."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from app.db.providers import request_session
from app.domain.orders.services import OrderService

__all__ = ("dependencies",)


def provide_orders(request: Request[Any, Any, Any]) -> OrderService:
    """The service with the request's session (made on first use), the direct pool, and the app's cursor codec.

    A plain function like :func:`app.db.providers.provide_service`, for the same reason: no per-request task group.
    """
    components = request.app.state.components
    return OrderService(session=request_session(request), direct=components.direct, cursors=components.cursors)


dependencies: dict[str, Provide] = {"orders": Provide(provide_orders, sync_to_thread=False)}
