"""Several API processes: a change made through one reaches WebSocket listeners connected to another.

Starts two real uvicorn processes and a separate SAQ worker process against the session's PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from app.config import Settings
from tests.integration.events.conftest import bearer
from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker, free_port, process_env, start_api, start_worker, stop_processes, wait_ready

pytestmark = pytest.mark.slow


@dataclass
class Processes:
    api_a: str
    api_b: str


@pytest.fixture
async def processes(settings: Settings, tmp_path: Path, committed_db: None) -> AsyncIterator[Processes]:
    env = process_env(
        settings, EMAIL_BACKEND="console", LOG_LEVEL="WARNING", DB_POOL_SIZE="3", LITESTAR_APP="app.main:app"
    )
    ports = [free_port(), free_port()]
    started: list[asyncio.subprocess.Process] = []
    log = (tmp_path / "processes.log").open("wb")
    try:
        for port in ports:
            started.append(await start_api(port, env, log))
        started.append(await start_worker(env, log))
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base, process in zip(bases, started, strict=False):
            await wait_ready(base, [process], within=30)
        yield Processes(*bases)
    finally:
        await stop_processes(started)
        log.close()


async def test_a_change_through_one_process_reaches_a_listener_on_another(
    processes: Processes, alice: Shopper, staff: dict[str, str], products: ProductMaker
) -> None:
    product = await products(stock=5)
    ws_url = processes.api_b.replace("http", "ws") + f"/ws/orders?token={bearer(alice.headers)}"
    async with connect(ws_url) as socket, httpx.AsyncClient(base_url=processes.api_a) as through_a:
        order_id = (await place(through_a, alice, (product, 1))).json()["id"]
        changed = await through_a.patch(f"/orders/{order_id}/status", json={"status": "paid"}, headers=staff)
        assert changed.status_code == 200

        received = [json.loads(await asyncio.wait_for(socket.recv(), 15)) for _ in range(2)]

    assert [(e["type"], e["status"]) for e in received] == [
        ("order_created", "pending"),
        ("order_status_changed", "paid"),
    ]
    assert {e["order_id"] for e in received} == {order_id}
