"""Request ids, the one structured log line per request, and the request metrics.

This is a plain ASGI wrapper placed *outside* Litestar's router (see ``app.main``), so it also sees requests that
match no route (404/405) and the responses of the exception handlers: every response carries ``X-Request-ID``,
every request produces exactly one log line, and every request is counted. It replaces uvicorn's access log (which
costs more and cannot carry the route template, user id or request id) and Litestar's Prometheus middleware (which
would time and wrap each request a second time): one timer and one ``send`` wrapper serve all three.

Metrics are labelled by route *template* (``/orders/{order_id}``), never the concrete path, and requests that match
no route share one label, so a scanner cannot grow the metric set.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any, Final, cast

import structlog
from litestar.enums import ScopeType
from prometheus_client import Counter, Histogram

from app.core.logging import get_logger

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ("REQUESTS", "REQUEST_DURATION", "RequestContextMiddleware", "request_id_of")

HEADER: Final = b"x-request-id"
UNMATCHED: Final = "<unmatched>"
_SCOPE_KEY: Final = "orders.request_id"
_SAFE_ID: Final = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_NOT_MEASURED: Final = frozenset({"/metrics"})

REQUESTS: Final = Counter(
    "orders_requests_total", "Requests by method, route template and status", ["method", "path", "status_code"]
)
REQUEST_DURATION: Final = Histogram(
    "orders_request_duration_seconds",
    "Request latency by method, route template and status",
    ["method", "path", "status_code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

access_logger = get_logger("app.access")

_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _record(method: str, path: str, status: int, seconds: float) -> None:
    key = (method, path, status)
    series = _series.get(key)
    if series is None:
        labels = (method, path, str(status))
        series = _series[key] = (REQUESTS.labels(*labels), REQUEST_DURATION.labels(*labels))
    series[0].inc()
    series[1].observe(seconds)


def request_id_of(scope: Scope | dict[str, Any]) -> str:
    """The request id of this connection, assigning one if the middleware has not (e.g. in unit tests)."""
    state = cast("dict[str, Any]", scope)
    request_id: str | None = state.get(_SCOPE_KEY)
    if request_id is None:
        request_id = state[_SCOPE_KEY] = uuid.uuid4().hex
    return request_id


def _client_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode("ascii") if _SAFE_ID.fullmatch(value) else None
    return None


def _user_id(scope: Scope) -> str | None:
    user = scope.get("user")
    user_id = getattr(user, "id", None)
    return str(user_id) if user_id is not None else None


class RequestContextMiddleware:
    """Assigns/echoes the request id, binds it to the log context; logs and counts the request when it ends."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _client_request_id(scope) or uuid.uuid4().hex
        cast("dict[str, Any]", scope)[_SCOPE_KEY] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 0 if scope["type"] == ScopeType.WEBSOCKET else 500
        header = (HEADER, request_id.encode("ascii"))

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            elif message["type"] == "websocket.accept":
                status = 101
            elif message["type"] == "websocket.close" and status == 0:
                status = 403  # refused before the handshake completed
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            elapsed = time.perf_counter() - started
            method: str = scope.get("method", "WS")  # type: ignore[assignment]
            route: str = scope.get("path_template") or UNMATCHED
            if scope["path"] not in _NOT_MEASURED:
                _record(method, route, status, elapsed)
            access_logger.info(
                "request",
                method=method,
                route=route,
                path=scope["path"],
                status=status,
                latency_ms=round(elapsed * 1000, 2),
                user_id=_user_id(scope),
                client=client[0] if (client := scope.get("client")) else None,
            )
