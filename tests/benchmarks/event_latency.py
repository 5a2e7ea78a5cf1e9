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
import time

import httpx
import msgspec
from aiosmtpd.controller import Controller
from websockets.asyncio.client import ClientConnection, connect

from tests.benchmarks.services import Inbox, api_and_worker, arguments, shoppers, summary
from tests.support import free_port

SECRET = "latency-benchmark-secret-0123456789abcdef0123456789"


async def _receive(socket: ClientConnection, arrivals: dict[str, float], counts: list[int]) -> None:
    """Read everything (a socket nobody reads stops answering pings); time "paid" events."""
    with contextlib.suppress(Exception):
        async for frame in socket:
            counts[0] += 1
            event = msgspec.json.decode(frame)
            if event.get("status") == "paid":
                arrivals.setdefault(event["order_id"], time.perf_counter())


async def main(args: argparse.Namespace) -> None:
    people = await shoppers(args.database_url, args.redis_url, SECRET, role="staff", stock=1_000_000)
    customer_headers, staff_headers = people.customer_headers, people.other_headers
    inbox = Inbox(containing="pending -> paid")
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    token = people.customer_token
    try:
        async with (
            api_and_worker(
                args.database_url,
                args.redis_url,
                SECRET,
                smtp_port=smtp.port,
                # Every listener is the same customer: lift the per-user socket cap (20 by default) above their number.
                WS_MAX_PER_USER=str(args.listeners + 1),
            ) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as http,
        ):
            ws_base = base.replace("http://", "ws://")
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
            order_ids = [
                (await http.post("/orders", json=people.order, headers=customer_headers)).json()["id"]
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
        print(summary("PATCH -> WebSocket", [ws_arrivals[o] - sent[o] for o in order_ids if o in ws_arrivals]))
        print(summary("PATCH -> email", [inbox.arrivals[o] - sent[o] for o in order_ids if o in inbox.arrivals]))
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
    parser = arguments(__doc__)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between status changes")
    asyncio.run(main(parser.parse_args()))
