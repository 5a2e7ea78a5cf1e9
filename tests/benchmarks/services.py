"""What the event benchmarks (``event_latency``, ``webhook_throughput``) set up the same way: a customer with an
address and a product, another user with a role, a real API process and worker process sending email by SMTP, an
inbox timing the emails, and the summary line of latencies."""

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
from dataclasses import dataclass
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.config import PROJECT_ROOT, Settings
from tests.support import AddressMaker, AuthHeaders, ProductMaker, UserMaker, free_port


class Inbox:
    """An SMTP handler noting when the first email naming each order (by its id) arrived; with ``containing``, only
    emails whose text contains it count."""

    def __init__(self, containing: str = "") -> None:
        self.containing = containing
        self.arrivals: dict[str, float] = {}

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        arrived = time.perf_counter()
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        if self.containing in text:
            for word in text.split():
                if word.count("-") == 4 and len(word) == 36:
                    self.arrivals.setdefault(word, arrived)
                    break
        return "250 OK"


@dataclass(frozen=True)
class Shoppers:
    customer_headers: dict[str, str]
    other_headers: dict[str, str]  # the user with ``role``
    order: dict[str, Any]  # an OrderCreate body: one of the product, to the customer's address

    @property
    def customer_token(self) -> str:
        """The customer's access token, as a WebSocket URL carries it."""
        return self.customer_headers["Authorization"].removeprefix("Bearer ")


async def shoppers(database_url: str, redis_url: str, jwt_secret: str, *, role: str, stock: int) -> Shoppers:
    """Empty the Redis database, then add a customer with an address, a user with ``role`` and a product with
    ``stock`` (committed), and sign their tokens with ``jwt_secret``."""
    await Redis.from_url(redis_url).flushdb()
    settings = Settings.from_env({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "JWT_SECRET": jwt_secret})
    engine = create_async_engine(database_url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        customer = await UserMaker(session)()
        other = await UserMaker(session)(roles=(role,))
        address = await AddressMaker(session)(customer)
        product = await ProductMaker(session)(stock=stock)
    await engine.dispose()
    tokens = AuthHeaders.for_settings(settings)
    order = {"items": [{"product_id": str(product.id), "quantity": 1}], "shipping_address_id": str(address.id)}
    return Shoppers(tokens(customer), tokens(other), order)


@contextlib.asynccontextmanager
async def api_and_worker(
    database_url: str, redis_url: str, jwt_secret: str, *, smtp_port: int, **env: str
) -> AsyncIterator[str]:
    """One uvicorn API process on a free port and one ``litestar workers run``, emailing through the SMTP server on
    127.0.0.1:``smtp_port``, with ``env`` added to their settings; yields the API's base URL once ``/ready`` answers
    200 (or 30 s on)."""
    api_port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": jwt_secret,
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_TLS": "none",
        "LOG_LEVEL": "WARNING",
        "LITESTAR_APP": "app.main:app",
        **env,
    }
    api = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(api_port), "--no-access-log"]
    worker = [sys.executable, "-m", "litestar", "workers", "run"]
    processes = [
        await asyncio.create_subprocess_exec(
            *command, cwd=PROJECT_ROOT, env=environment, stdout=asyncio.subprocess.DEVNULL
        )
        for command in (api, worker)
    ]
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(150):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"http://127.0.0.1:{api_port}/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
        yield f"http://127.0.0.1:{api_port}"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await process.wait()


def arguments(description: str | None) -> argparse.ArgumentParser:
    """The command line both benchmarks start from: the database and Redis they may fill and flush."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    return parser


def summary(name: str, latencies: list[float]) -> str:
    """One line: how many, the median, p99 and the largest, in milliseconds."""
    if not latencies:
        return f"{name}: nothing arrived"
    ms = sorted(1000 * x for x in latencies)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"{name}: n={len(ms)} median={statistics.median(ms):.1f} ms p99={p99:.1f} ms max={ms[-1]:.1f} ms"
