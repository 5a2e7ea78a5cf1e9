"""``POST /auth/password/forgot`` timing for an unknown, an inactive and an active account (no enumeration by time).

Runs the app in-process (its lifespan, no worker) against a migrated database, and sends the three kinds of request
interleaved, ``--requests`` of each. Prints the median and p90 latency of each kind. Not a test: timings depend on
the machine. Leaves the outbox rows and two users behind: use a throwaway database.

    uv run python -m tests.benchmarks.forgot_timing \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/orders_forgot \\
        --redis-url redis://127.0.0.1:6379/9 --requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.config import Settings
from app.main import create_app
from tests.support import UserMaker, asgi_transport

SECRET = "forgot-benchmark-secret-0123456789abcdef0123456789"


async def main(database_url: str, redis_url: str, requests: int) -> None:
    engine = create_async_engine(database_url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        make = UserMaker(session)
        active, inactive = await make(), await make(is_active=False)
    await engine.dispose()
    settings = Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "JWT_SECRET": SECRET,
            "RATE_LIMIT_AUTH": "1000000/minute",
            "LOG_LEVEL": "WARNING",
        }
    )
    app = create_app(settings)
    emails = {"unknown": "nobody.at.all@example.com", "inactive": inactive.email, "active": active.email}
    timings: dict[str, list[float]] = {kind: [] for kind in emails}
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=asgi_transport(app), base_url="http://bench") as client,
    ):
        for round_ in range(requests + 20):
            for kind, email in emails.items():
                started = time.perf_counter()
                response = await client.post("/auth/password/forgot", json={"email": email})
                elapsed = time.perf_counter() - started
                assert response.status_code == 202, response.text
                if round_ >= 20:  # warm-up
                    timings[kind].append(elapsed * 1000)
    for kind, values in timings.items():
        values.sort()
        print(
            f"{kind:>8}: median {statistics.median(values):.2f} ms, "
            f"p90 {values[int(len(values) * 0.9)]:.2f} ms ({len(values)} requests)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--requests", type=int, default=300)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.database_url, arguments.redis_url, arguments.requests))
