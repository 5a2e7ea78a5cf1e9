"""Graceful shutdown of an API process (CONTRACT §8): on SIGTERM, drain for ``SHUTDOWN_DRAIN_SECONDS``, then stop.

What a rolling deploy needs from a process it is about to replace:

1. ``/ready`` answers 503 ("process shutting down") from the moment SIGTERM arrives, so the load balancer (or the
   Kubernetes endpoints controller) stops sending new traffic here;
2. the process keeps serving normally meanwhile — traffic routed before the balancer noticed still lands here — and
   every response carries ``Connection: close``, so a client whose keep-alive connection points here opens its next
   request elsewhere instead of having an idle connection cut under it;
3. after the drain, uvicorn's own shutdown runs: it stops listening, finishes the requests in flight, closes
   WebSockets with 1012 (service restart) and runs the lifespan shutdown; the process exits 0.

uvicorn handles SIGTERM itself: ``Server.capture_signals`` installs ``Server.handle_exit`` with ``signal.signal``
before the lifespan starts, and that handler starts the shutdown at the next 0.1 s tick. So the lifespan of this
module, which runs after that installation, puts its own handler in front and keeps uvicorn's to call at the end of
the drain; nothing reinstalls handlers after start-up. Under ``uvicorn --workers N`` (and ``litestar run`` with
several workers, which runs that command) every worker process runs the same code, and the supervisor forwards its
SIGTERM to each worker (``Multiprocess.terminate_all``), then waits for them.

The drain also lets idle keep-alive connections lapse on their own: uvicorn closes a connection idle for
``--timeout-keep-alive`` (5 s by default), so with the default 5 s drain, the connections left when the server stops
are those with a request in flight, which it finishes. A second SIGTERM during the drain stops at once (an operator
who means it). Outside uvicorn (tests calling the ASGI app, other servers) nothing is installed and
:meth:`GracefulShutdown.begin_drain` is the only way in.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any, Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import get_logger

__all__ = ("GracefulShutdown",)

logger = get_logger("app.shutdown")

SignalHandler = Callable[[int, FrameType | None], Any]

_CONNECTION_CLOSE: Final = (b"connection", b"close")


class GracefulShutdown:
    """The drain state of one process and the SIGTERM handler that starts it."""

    def __init__(self, drain_seconds: float) -> None:
        self.drain_seconds = drain_seconds
        self._draining = False
        self._server_handler: SignalHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_timer: asyncio.TimerHandle | None = None

    @property
    def draining(self) -> bool:
        return self._draining

    def begin_drain(self) -> None:
        """Answer ``/ready`` with 503 and close connections after their response, from now on."""
        if not self._draining:
            self._draining = True
            self._log_drain()

    def _log_drain(self) -> None:
        logger.info("shutdown_draining", drain_seconds=self.drain_seconds)

    @asynccontextmanager
    async def lifespan(self, _: object) -> AsyncIterator[None]:
        installed = self._install()
        try:
            yield
        finally:
            if installed:
                self._uninstall()

    def _install(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False  # signal.signal works on the main thread only (e.g. Litestar's test client runs elsewhere)
        current = signal.getsignal(signal.SIGTERM)
        if not _is_uvicorn_handler(current):
            return False
        self._server_handler = current  # type: ignore[assignment]  # checked above
        self._loop = asyncio.get_running_loop()
        signal.signal(signal.SIGTERM, self._on_sigterm)
        return True

    def _uninstall(self) -> None:
        if self._stop_timer is not None:
            self._stop_timer.cancel()
        if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, self._server_handler)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        # Runs on the main thread between two bytecodes of whatever the loop was doing: only flip the flag (so the
        # next /ready already answers 503) and hand the rest, logging included, to the loop (call_soon_threadsafe
        # also wakes it if it sleeps in select).
        assert self._loop is not None
        if self._draining or self.drain_seconds <= 0:
            self._loop.call_soon_threadsafe(self._stop_server)
            return
        self._draining = True
        self._loop.call_soon_threadsafe(self._schedule_stop)

    def _schedule_stop(self) -> None:
        assert self._loop is not None
        self._log_drain()
        self._stop_timer = self._loop.call_later(self.drain_seconds, self._stop_server)

    def _stop_server(self) -> None:
        """Start uvicorn's graceful shutdown: ``should_exit`` is what its ``handle_exit`` sets for SIGTERM.

        Setting it, rather than calling ``handle_exit``, keeps the signal out of uvicorn's list of captured signals,
        which it would re-raise once it has shut down, ending the process by SIGTERM (status 143) after a clean
        shutdown instead of exiting 0.
        """
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
        logger.info("shutdown_stopping")
        server = getattr(self._server_handler, "__self__", None)
        server.should_exit = True  # type: ignore[union-attr]  # a uvicorn Server, checked at installation

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Wrap the ASGI app: while draining, every HTTP response says ``Connection: close``."""

        async def close_after_response(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return

            async def send_closing(message: Message) -> None:
                # Decided when the response starts, not when the request arrived: a request in flight at SIGTERM
                # closes its connection too.
                if message["type"] == "http.response.start" and self._draining:
                    headers = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
                    message = {**message, "headers": [*headers, _CONNECTION_CLOSE]}
                await send(message)

            await app(scope, receive, send_closing)

        return close_after_response


def _is_uvicorn_handler(handler: object) -> bool:
    try:
        from uvicorn.server import Server
    except ImportError:  # pragma: no cover - uvicorn is a runtime dependency
        return False
    return isinstance(getattr(handler, "__self__", None), Server) and getattr(handler, "__name__", "") == "handle_exit"
