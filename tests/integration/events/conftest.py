"""Event fixtures: a real SMTP server (aiosmtpd), and an app that runs the SAQ worker and dispatcher in-process.

Everything here commits for real, as everywhere: the dispatcher and the worker use their own connections, and
see committed rows only (the tables are emptied after each test).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from httpx_ws import WebSocketDisconnect, WebSocketUpgradeError, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from tests.conftest import running
from tests.integration.core.dedicated_app import dedicated_settings
from tests.integration.orders.conftest import Shopper
from tests.support import (
    AddressMaker,
    AuthHeaders,
    ProductMaker,
    UserMaker,
    free_port,
    in_process_client,
)


@dataclass
class Mailbox:
    """What the SMTP server received; ``fail_next`` answers that many DATA commands with a temporary failure."""

    messages: list[EmailMessage] = field(default_factory=list)
    fail_next: int = 0
    attempts: int = 0
    #: Seconds each DATA command takes before it is answered (a slow mail server).
    delay: float = 0.0

    async def wait_for_attempt(self, *, within: float = 15.0) -> None:
        """Until a DATA command has come in (with ``delay``, it is then still being answered)."""
        deadline = asyncio.get_running_loop().time() + within
        while self.attempts == 0:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("no email was attempted")
            await asyncio.sleep(0.05)

    async def wait_for(self, count: int, *, within: float = 15.0) -> list[EmailMessage]:
        deadline = asyncio.get_running_loop().time() + within
        while len(self.messages) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {count} emails, got {len(self.messages)}")
            await asyncio.sleep(0.05)
        return list(self.messages)


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.mailbox.attempts += 1
        if self.mailbox.delay:
            await asyncio.sleep(self.mailbox.delay)
        if self.mailbox.fail_next > 0:
            self.mailbox.fail_next -= 1
            return "451 4.3.0 Temporary failure, try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.mailbox.messages.append(message)
        return "250 Message accepted"


@dataclass
class SMTPServer:
    port: int
    handler: _Handler


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SMTPServer]:
    handler = _Handler(Mailbox())
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield SMTPServer(controller.port, handler)
    controller.stop()


@pytest.fixture
def mailbox(smtp_server: SMTPServer) -> Mailbox:
    smtp_server.handler.mailbox = Mailbox()
    return smtp_server.handler.mailbox


def events_settings(base: Settings, smtp_port: int, **env: str) -> Settings:
    return dedicated_settings(
        base,
        WORKER_IN_PROCESS="true",
        EMAIL_BACKEND="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        SMTP_TLS="none",
        EMAIL_RETRY_DELAY="0.05",
        EMAIL_RETRY_BACKOFF="0.4",
        LIVE_CHECK_INTERVAL="0.5",
        DB_POOL_SIZE="10",
        **env,
    )


@pytest.fixture
async def events_app(settings: Settings, smtp_server: SMTPServer, committed_db: None) -> AsyncIterator[Litestar]:
    async with running(create_app(events_settings(settings, smtp_server.port))) as application:
        yield application


@pytest.fixture
async def events_client(events_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_client(events_app) as c:
        yield c


@asynccontextmanager
async def ws_client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that can open WebSockets to ``app`` in-process (enter and leave it in one task).

    The handshake may take a while on a loaded machine (the handler subscribes and reads the newest event id before
    it accepts, on a fresh app's first connections); httpx-ws gives up after 1 s by default.
    """
    transport = ASGIWebSocketTransport(app=app, initial_receive_timeout=HANDSHAKE_TIMEOUT)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


HANDSHAKE_TIMEOUT = 15.0
RECEIVE_TIMEOUT = 5.0


async def refusal(app: Litestar, url: str) -> int:
    """The close code (1008) or handshake status (403) with which the server turned the socket down."""
    async with ws_client(app) as client:
        try:
            async with aconnect_ws(url, client) as ws:
                await ws.receive_text(timeout=RECEIVE_TIMEOUT)
        except WebSocketUpgradeError as refused:
            return refused.response.status_code
        except WebSocketDisconnect as closed:
            return closed.code
    raise AssertionError("the socket was accepted")


@pytest.fixture
async def session(engine: AsyncEngine, committed_db: None) -> AsyncIterator[AsyncSession]:
    async with async_sessionmaker(engine, expire_on_commit=False)() as s:
        yield s


@pytest.fixture
def products(session: AsyncSession) -> ProductMaker:
    return ProductMaker(session)


@pytest.fixture
def users(session: AsyncSession) -> UserMaker:
    return UserMaker(session)


@pytest.fixture
def tokens(settings: Settings) -> AuthHeaders:
    return AuthHeaders.for_settings(settings)


@pytest.fixture
async def alice(users: UserMaker, session: AsyncSession, tokens: AuthHeaders) -> Shopper:
    user = await users(full_name="Alice Example")
    return Shopper(user, tokens(user), await AddressMaker(session)(user))


@pytest.fixture
async def bob(users: UserMaker, session: AsyncSession, tokens: AuthHeaders) -> Shopper:
    user = await users(full_name="Bob Example")
    return Shopper(user, tokens(user), await AddressMaker(session)(user))


@pytest.fixture
async def staff(users: UserMaker, tokens: AuthHeaders) -> dict[str, str]:
    return tokens(await users(roles=("staff",)))


def bearer(headers: dict[str, str]) -> str:
    """The raw access token of an ``Authorization`` header (for ``?token=``)."""
    return headers["Authorization"].removeprefix("Bearer ")
