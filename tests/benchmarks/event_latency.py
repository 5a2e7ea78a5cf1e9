"""End-to-end event latency: ``PATCH /orders/{id}/status`` → WebSocket message, and → email accepted by SMTP.

Starts real processes (one uvicorn API, one ``litestar workers run``), an in-process SMTP server, and N extra
WebSocket listeners on the same API process to see how many one process holds while events keep flowing. Needs a
migrated, empty database and a Redis database it may flush.

    uv run python -m tests.benchmarks.event_latency \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/orders_latency \\
        --redis-url redis://127.0.0.1:6379/9 --changes 200 --listeners 1000

Prints the median and p99 of both latencies. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
from aiosmtpd.controller import Controller
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from websockets.asyncio.client import ClientConnection, connect

from app.config import PROJECT_ROOT, Settings
from tests.support import AddressMaker, AuthHeaders, ProductMaker, UserMaker

SECRET = "latency-benchmark-secret-0123456789abcdef0123456789"


class _Inbox:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        arrived = time.perf_counter()
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        if "pending -> paid" in text:
            order_id = next(word for word in text.split() if word.count("-") == 4 and len(word) == 36)
            self.arrivals[order_id] = arrived
        return "250 OK"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def _services(args: argparse.Namespace, smtp_port: int, api_port: int) -> AsyncIterator[None]:
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "JWT_SECRET": SECRET,
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_TLS": "none",
        "LOG_LEVEL": "WARNING",
        "LITESTAR_APP": "app.main:app",
        # Every listener is the same customer: lift the per-user socket cap (20 by default) above their number.
        "WS_MAX_PER_USER": str(args.listeners + 1),
    }
    api = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(api_port), "--no-access-log"]
    worker = [sys.executable, "-m", "litestar", "workers", "run"]
    processes = [
        await asyncio.create_subprocess_exec(*command, cwd=PROJECT_ROOT, env=env, stdout=asyncio.subprocess.DEVNULL)
        for command in (api, worker)
    ]
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(150):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"http://127.0.0.1:{api_port}/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await process.wait()


async def _receive(socket: ClientConnection, arrivals: dict[str, float], counts: list[int]) -> None:
    """Read everything (a socket nobody reads stops answering pings); time "paid" events."""
    with contextlib.suppress(Exception):
        async for frame in socket:
            counts[0] += 1
            event = msgspec.json.decode(frame)
            if event.get("status") == "paid":
                arrivals.setdefault(event["order_id"], time.perf_counter())


def _summary(name: str, latencies: list[float]) -> str:
    ms = sorted(1000 * x for x in latencies)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"{name}: n={len(ms)} median={statistics.median(ms):.1f} ms p99={p99:.1f} ms max={ms[-1]:.1f} ms"


async def main(args: argparse.Namespace) -> None:
    await Redis.from_url(args.redis_url).flushdb()
    settings = Settings.from_env({"DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url, "JWT_SECRET": SECRET})
    engine = create_async_engine(args.database_url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        customer = await UserMaker(session)()
        staff = await UserMaker(session)(roles=("staff",))
        address = await AddressMaker(session)(customer)
        product = await ProductMaker(session)(stock=1_000_000)
    await engine.dispose()
    tokens = AuthHeaders.for_settings(settings)
    customer_headers, staff_headers = tokens(customer), tokens(staff)
    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    api_port = _free_port()
    base, ws_base = f"http://127.0.0.1:{api_port}", f"ws://127.0.0.1:{api_port}"
    token = customer_headers["Authorization"].removeprefix("Bearer ")
    try:
        async with _services(args, smtp.port, api_port), httpx.AsyncClient(base_url=base, timeout=30) as http:
            listeners = [await connect(f"{ws_base}/ws/orders?token={token}") for _ in range(args.listeners)]
            socket = await connect(f"{ws_base}/ws/orders?token={token}")
            ws_arrivals: dict[str, float] = {}
            extra_arrivals: list[dict[str, float]] = [{} for _ in listeners]
            counts = [[0] for _ in range(len(listeners) + 1)]
            readers = [asyncio.create_task(_receive(socket, ws_arrivals, counts[0]))]
            readers += [
                asyncio.create_task(_receive(listener, extra_arrivals[i], counts[i + 1]))
                for i, listener in enumerate(listeners)
            ]
            body = {"items": [{"product_id": str(product.id), "quantity": 1}], "shipping_address_id": str(address.id)}
            order_ids = [
                (await http.post("/orders", json=body, headers=customer_headers)).json()["id"]
                for _ in range(args.changes)
            ]
            await asyncio.sleep(2)  # let creation events and emails drain
            inbox.arrivals.clear()
            sent: dict[str, float] = {}
            for order_id in order_ids:
                sent[order_id] = time.perf_counter()
                status = {"status": "paid"}
                (await http.patch(f"/orders/{order_id}/status", json=status, headers=staff_headers)).raise_for_status()
                await asyncio.sleep(args.interval)
            for _ in range(600):
                if len(inbox.arrivals) >= args.changes and len(ws_arrivals) >= args.changes:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)
            for listener in [*listeners, socket]:
                await listener.close()
            await asyncio.gather(*readers)
        print(_summary("PATCH -> WebSocket", [ws_arrivals[o] - sent[o] for o in order_ids if o in ws_arrivals]))
        print(_summary("PATCH -> email", [inbox.arrivals[o] - sent[o] for o in order_ids if o in inbox.arrivals]))
        expected = (args.listeners + 1) * 2 * args.changes
        received = sum(c[0] for c in counts)
        complete = sum(len(a) == args.changes for a in [ws_arrivals, *extra_arrivals])
        print(
            f"listeners on one API process: {args.listeners + 1}; messages delivered {received} of {expected}; "
            f"listeners that got every paid event: {complete}"
        )
    finally:
        smtp.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between status changes")
    asyncio.run(main(parser.parse_args()))
