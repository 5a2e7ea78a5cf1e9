"""Webhook throughput, and what webhooks cost the other event paths.

Starts real processes (one uvicorn API, one ``litestar workers run``, an HTTP receiver on 127.0.0.1) and an
in-process SMTP server. Places ``--orders`` orders twice: first with no webhook endpoint, then with
``--endpoints`` endpoints subscribed (each order event is then also sent ``--endpoints`` times). For both rounds it
prints the median and p99 of ``POST /orders`` → WebSocket event and → confirmation email accepted by SMTP; for the
second, how many deliveries per second reached the receiver (first to last). Needs a migrated, empty database and a
Redis database it may flush.

    uv run python -m tests.benchmarks.webhook_throughput \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/orders_webhooks \\
        --redis-url redis://127.0.0.1:6379/9 --orders 1000 --endpoints 10

Not a test: timings depend on the machine (and on what else runs on it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import socket
import statistics
import time
from typing import Any

import httpx
import msgspec
from aiosmtpd.controller import Controller
from websockets.asyncio.client import ClientConnection, connect

from tests.benchmarks.services import Inbox, api_and_worker, arguments, shoppers, summary
from tests.support import free_port

SECRET = "webhook-benchmark-secret-0123456789abcdef0123456789"


class _Receiver:
    """A minimal HTTP/1.1 server in a process of its own that answers 204 to every POST and counts arrivals.

    Its own process: in this one, 10,000 requests would compete for the GIL and the loop with the SMTP server and
    the WebSocket reader, and delay the very arrivals the benchmark times. ``time.perf_counter`` is the system's
    monotonic clock on Linux, the same in both processes.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.port = free_port()
        self._count = context.Value("q", 0, lock=False)
        self._first = context.Value("d", 0.0, lock=False)
        self._last = context.Value("d", 0.0, lock=False)
        self._process = context.Process(
            target=_serve_receiver, args=(self.port, self._count, self._first, self._last), daemon=True
        )

    def start(self) -> None:
        self._process.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError("the receiver did not start")

    def stop(self) -> None:
        self._process.terminate()
        self._process.join(5)

    @property
    def received(self) -> int:
        return int(self._count.value)

    @property
    def span(self) -> float:
        return float(self._last.value - self._first.value)


def _serve_receiver(port: int, count: Any, first: Any, last: Any) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            while await reader.readline():
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                now = time.perf_counter()
                if count.value == 0:
                    first.value = now
                last.value = now
                count.value += 1
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


async def _receive(feed: ClientConnection, arrivals: dict[str, float]) -> None:
    with contextlib.suppress(Exception):
        async for frame in feed:
            event = msgspec.json.decode(frame)
            if event.get("type") == "order_created":
                arrivals.setdefault(event["order_id"], time.perf_counter())


async def _round(
    http: httpx.AsyncClient, args: argparse.Namespace, body: dict[str, Any], headers: dict[str, str],
    ws_arrivals: dict[str, float], inbox: Inbox, expected_deliveries: int, receiver: _Receiver,
) -> tuple[list[float], list[float]]:  # fmt: skip
    """Place the orders; wait for their events, emails and deliveries; return (WebSocket, email) latencies."""
    ws_arrivals.clear()
    inbox.arrivals.clear()
    sent: dict[str, float] = {}
    for _ in range(args.orders):
        started = time.perf_counter()
        response = await http.post("/orders", json=body, headers=headers)
        response.raise_for_status()
        sent[response.json()["id"]] = started
        await asyncio.sleep(args.interval)
    deadline = time.monotonic() + args.drain_timeout
    while time.monotonic() < deadline:
        if (
            len(inbox.arrivals) >= args.orders
            and len(ws_arrivals) >= args.orders
            and receiver.received >= expected_deliveries
        ):
            break
        await asyncio.sleep(0.1)
    ws = [ws_arrivals[o] - t for o, t in sent.items() if o in ws_arrivals]
    mail = [inbox.arrivals[o] - t for o, t in sent.items() if o in inbox.arrivals]
    return ws, mail


async def main(args: argparse.Namespace) -> None:
    people = await shoppers(args.database_url, args.redis_url, SECRET, role="admin", stock=10_000_000)
    customer_headers, admin_headers = people.customer_headers, people.other_headers
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    receiver = _Receiver()
    receiver.start()
    receiver_port = receiver.port
    token = people.customer_token
    body = people.order
    try:
        async with (
            api_and_worker(
                args.database_url,
                args.redis_url,
                SECRET,
                smtp_port=smtp.port,
                WEBHOOK_ALLOW_PRIVATE="true",  # the receiver is on 127.0.0.1
                WEBHOOK_ALLOW_INSECURE="true",
            ) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as http,
        ):
            ws_base = base.replace("http://", "ws://")
            feed = await connect(f"{ws_base}/ws/orders?token={token}")
            ws_arrivals: dict[str, float] = {}
            reader = asyncio.create_task(_receive(feed, ws_arrivals))
            # Warm up every path once, and let the worker finish starting (its webhook process too) before timing.
            await http.post("/orders", json=body, headers=customer_headers)
            for _ in range(300):
                if inbox.arrivals:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(5)

            ws_before, mail_before = await _round(http, args, body, customer_headers, ws_arrivals, inbox, 0, receiver)
            for n in range(args.endpoints):
                url = f"http://127.0.0.1:{receiver_port}/hook/{n}"
                response = await http.post("/admin/webhooks", json={"url": url}, headers=admin_headers)
                response.raise_for_status()
            expected = args.orders * args.endpoints
            ws_after, mail_after = await _round(
                http, args, body, customer_headers, ws_arrivals, inbox, expected, receiver
            )
            await feed.close()
            await reader
        print(f"orders per round: {args.orders}, one every {args.interval * 1000:.0f} ms (+ request time)")
        print("without webhooks:")
        print("  " + summary("POST /orders -> WebSocket", ws_before))
        print("  " + summary("POST /orders -> email", mail_before))
        print(f"with {args.endpoints} endpoints subscribed:")
        print("  " + summary("POST /orders -> WebSocket", ws_after))
        print("  " + summary("POST /orders -> email", mail_after))
        if receiver.received > 1:
            got, span = receiver.received, receiver.span
            print(f"  deliveries received: {got} of {expected} in {span:.1f} s: {got / span:.0f} per second")
        for name, before, after in (("WebSocket", ws_before, ws_after), ("email", mail_before, mail_after)):
            if before and after:
                change = statistics.median(after) / statistics.median(before) - 1
                print(f"  median {name} latency with webhooks: {change:+.0%} (goal: within +20 %)")
    finally:
        receiver.stop()
        smtp.stop()


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between orders")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for everything to arrive")
    asyncio.run(main(parser.parse_args()))
