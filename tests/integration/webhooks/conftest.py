"""Webhook fixtures: a real HTTP receiver on 127.0.0.1, and an app whose in-process worker sends webhooks to it.

The receiver is a small HTTP/1.1 server on asyncio streams: it records every request and answers from a script
(a status code, or ``"hang"`` to never answer), so each test decides what the receiver does on each attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest
from litestar import Litestar
from redis import Redis as SyncRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from app.config import Settings
from app.domain.webhooks.models import WebhookDelivery, WebhookEndpoint
from app.main import create_app
from tests.conftest import running
from tests.integration.core.dedicated_app import dedicated_settings
from tests.integration.events import conftest as event_fixtures
from tests.integration.events.conftest import SMTPServer
from tests.support import AuthHeaders, UserMaker, free_port, in_process_client, webhook_redis_url

Action = int | Literal["hang"]

# Fixtures shared with the event tests (a conftest's fixtures reach only its own directory).
alice = event_fixtures.alice
mailbox = event_fixtures.mailbox
products = event_fixtures.products
session = event_fixtures.session
smtp_server = event_fixtures.smtp_server
tokens = event_fixtures.tokens
users = event_fixtures.users


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def verify(self, secret: str) -> Any:
        """The parsed body, if the Standard Webhooks library accepts the signature with ``secret`` (else raises)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    script: list[Action] = field(default_factory=list)
    default: Action = 204
    requests: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._closing = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def wait_for(self, count: int, *, within: float = 20.0) -> list[Received]:
        deadline = asyncio.get_running_loop().time() + within
        while len(self.requests) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {count} webhook requests, got {len(self.requests)}")
            await asyncio.sleep(0.02)
        return list(self.requests)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                _method, path, _version = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, value = header.decode().split(":", 1)
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Received(path, headers, body))
                action = self.script.pop(0) if self.script else self.default
                if action == "hang":
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), 60)
                    return
                location = f"location: http://127.0.0.1:{self.port}/elsewhere\r\n" if 300 <= action < 400 else ""
                writer.write(f"HTTP/1.1 {action} Scripted\r\ncontent-length: 0\r\n{location}\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session", autouse=True)
def _empty_webhook_redis(settings: Settings) -> None:
    with SyncRedis.from_url(webhook_redis_url(settings.redis_url)) as client:
        client.flushdb()


def webhook_settings(base: Settings, smtp_port: int, **env: str) -> Settings:
    """An in-process worker, private and http:// targets allowed (the receiver is on 127.0.0.1), fast retries, a
    Redis database of its own; ``env`` overrides any of it."""
    defaults = {
        "REDIS_URL": webhook_redis_url(base.redis_url),
        "WORKER_IN_PROCESS": "true",
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_TLS": "none",
        "EMAIL_RETRY_DELAY": "0.05",
        "EMAIL_RETRY_BACKOFF": "0.4",
        "DB_POOL_SIZE": "10",
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_ALLOW_INSECURE": "true",
        "WEBHOOK_RETRY_DELAY": "0.1",
        "WEBHOOK_MAX_ATTEMPTS": "3",
        "WEBHOOK_DISABLE_AFTER": "2",
    }
    return dedicated_settings(base, **{**defaults, **env})


@pytest.fixture
async def webhook_app(settings: Settings, smtp_server: SMTPServer, committed_db: None) -> AsyncIterator[Litestar]:
    async with running(create_app(webhook_settings(settings, smtp_server.port))) as application:
        yield application


@pytest.fixture
async def patient_webhook_client(
    settings: Settings, smtp_server: SMTPServer, committed_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``webhook_client`` with 8 attempts 0.2 s apart and doubling (25 s in all): room to bring a receiver up."""
    patient = webhook_settings(settings, smtp_server.port, WEBHOOK_MAX_ATTEMPTS="8", WEBHOOK_RETRY_DELAY="0.2")
    async with running(create_app(patient)) as application, in_process_client(application) as c:
        yield c


@pytest.fixture
async def webhook_client(webhook_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_client(webhook_app) as c:
        yield c


@pytest.fixture
async def admin(users: UserMaker, tokens: AuthHeaders) -> dict[str, str]:
    return tokens(await users(roles=("admin",), email="webhook-admin@example.com"))


async def subscribe(client: httpx.AsyncClient, admin: dict[str, str], url: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/admin/webhooks", json={"url": url, **body}, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliveries_of(engine: AsyncEngine, endpoint_id: str) -> list[WebhookDelivery]:
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        return list(
            (
                await session.scalars(
                    select(WebhookDelivery)
                    .where(WebhookDelivery.endpoint_id == endpoint_id)
                    .order_by(WebhookDelivery.event_id)
                )
            ).all()
        )


async def endpoint_row(engine: AsyncEngine, endpoint_id: str) -> WebhookEndpoint:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        return endpoint


async def wait_until(check: Any, *, within: float = 20.0) -> None:
    """Poll ``await check()`` until it is truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
