"""forgot and reset count against the same per-client budget as login and register (RATE_LIMIT_AUTH)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from app.config import Settings
from tests.integration.core.dedicated_app import running_app


async def _flush_rate_limit_keys(redis: Redis) -> None:
    keys = [key async for key in redis.scan_iter(match="ratelimit*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def limited_client(settings: Settings, redis: Redis, committed_db: None) -> AsyncIterator[httpx.AsyncClient]:
    await _flush_rate_limit_keys(redis)
    async with running_app(settings, RATE_LIMIT_AUTH="3/minute") as client:
        yield client
    await _flush_rate_limit_keys(redis)


async def test_forgot_reset_and_login_share_the_auth_budget(limited_client: httpx.AsyncClient) -> None:
    forgot = await limited_client.post("/auth/password/forgot", json={"email": "nobody@example.com"})
    reset = await limited_client.post("/auth/password/reset", json={"token": "x" * 43, "new_password": "password-1"})
    login = await limited_client.post("/auth/login", json={"email": "nobody@example.com", "password": "wrong-one"})
    assert (forgot.status_code, reset.status_code, login.status_code) == (202, 400, 401)

    for path, body in [
        ("/auth/password/forgot", {"email": "nobody@example.com"}),
        ("/auth/password/reset", {"token": "x" * 43, "new_password": "password-1"}),
    ]:
        response = await limited_client.post(path, json=body)
        assert response.status_code == 429, path
        assert response.headers["retry-after"]
