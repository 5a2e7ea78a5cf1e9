"""Several API processes: a change made through one reaches WebSocket listeners connected to another.

Starts two real uvicorn processes and a separate SAQ worker process against the session's PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from app.config import PROJECT_ROOT, Settings
from tests.integration.events.conftest import bearer, free_port
from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker

pytestmark = pytest.mark.slow


@dataclass
class Processes:
    api_a: str
    api_b: str


async def _wait_healthy(base: str, process: asyncio.subprocess.Process, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient() as client:
        while True:
            if process.returncode is not None:
                raise AssertionError(f"{base} exited with {process.returncode}")
            try:
                if (await client.get(f"{base}/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert asyncio.get_running_loop().time() < deadline, f"{base} did not become ready"
            await asyncio.sleep(0.2)


@pytest.fixture
async def processes(settings: Settings, tmp_path: Path, committed_db: None) -> AsyncIterator[Processes]:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "JWT_SECRET": settings.jwt_secret,
        "EMAIL_BACKEND": "console",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_SIZE": "3",
        "LITESTAR_APP": "app.main:app",
    }
    ports = [free_port(), free_port()]
    started: list[asyncio.subprocess.Process] = []
    log = (tmp_path / "processes.log").open("wb")
    try:
        for port in ports:
            started.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--no-access-log",
                    cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log,
                )
            )  # fmt: skip
        started.append(
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "litestar", "workers", "run", cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log
            )
        )
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base, process in zip(bases, started, strict=False):
            await _wait_healthy(base, process)
        yield Processes(*bases)
    finally:
        for process in started:
            if process.returncode is None:
                process.terminate()
        for process in started:
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
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
