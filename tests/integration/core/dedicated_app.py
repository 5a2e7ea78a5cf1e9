"""A second, fully separate app for tests that need other settings (rate limit, Secure cookie, Redis down).

It is built the production way: ``create_app`` with settings parsed by ``Settings.from_env`` and its own engine from
``alchemy_config`` (so its lifespan disposes only its own pool). It sees only committed data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from redis.asyncio import Redis

from app.config import Settings
from app.main import create_app
from tests.conftest import start_app
from tests.support import asgi_transport


def dedicated_settings(base: Settings, **env: str) -> Settings:
    """The session's servers and secret, the test defaults, and ``env`` on top."""
    assert base.database_url is not None
    assert base.redis_url is not None
    return Settings.from_env(
        {
            "DATABASE_URL": base.database_url,
            "REDIS_URL": base.redis_url,
            "JWT_SECRET": base.jwt_secret,
            "COOKIE_SECURE": "false",
            "RATE_LIMIT_AUTH": "100000/minute",
            "LOG_LEVEL": base.log_level,
            "EMAIL_BACKEND": "console",
            "DB_POOL_SIZE": "2",
            "DB_POOL_MODE": base.db_pool_mode,
            # An in-process worker waits this long for its own loops when the app stops (SAQ's stop); tests that are
            # about the grace set their own.
            "WORKER_SHUTDOWN_GRACE_SECONDS": str(base.worker_shutdown_grace_seconds),
            **env,
        }
    )


@asynccontextmanager
async def running_app(base: Settings, *, redis: Redis | None = None, **env: str) -> AsyncIterator[httpx.AsyncClient]:
    """Start an app with ``env`` overrides (and optionally another Redis client); yield an HTTP client to it."""
    application = create_app(dedicated_settings(base, **env), redis=redis)
    task, stop = await start_app(application)
    try:
        transport = asgi_transport(application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        stop.set()
        await task
