"""RATE_LIMIT_AUTH: login, token and register share one per-client-IP budget; beyond it, 429 with Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.config import Settings
from tests.integration.core.dedicated_app import running_app

UNKNOWN_LOGIN = {"email": "nobody@example.com", "password": "wrong-password"}


async def _flush_rate_limit_keys(redis: Redis) -> None:
    keys = [key async for key in redis.scan_iter(match="ratelimit*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def limited_client(settings: Settings, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    """An app allowing 3 credential requests per minute, with the shared counters reset before and after."""
    await _flush_rate_limit_keys(redis)
    async with running_app(settings, RATE_LIMIT_AUTH="3/minute") as client:
        yield client
    await _flush_rate_limit_keys(redis)


async def test_fourth_login_within_a_minute_is_429_with_retry_after(limited_client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await limited_client.post("/auth/login", json=UNKNOWN_LOGIN)).status_code == 401

    response = await limited_client.post("/auth/login", json=UNKNOWN_LOGIN)

    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_register_token_and_login_share_the_budget(limited_client: httpx.AsyncClient) -> None:
    register = await limited_client.post("/auth/register", json={"email": "short@example.com", "password": "short"})
    token = await limited_client.post("/auth/token", data={"username": "nobody@example.com", "password": "wrong"})
    login = await limited_client.post("/auth/login", json=UNKNOWN_LOGIN)
    assert (register.status_code, token.status_code, login.status_code) == (422, 401, 401)

    attempts: list[tuple[str, dict[str, Any]]] = [
        ("/auth/register", {"json": {"email": "short@example.com", "password": "short"}}),
        ("/auth/token", {"data": {"username": "nobody@example.com", "password": "wrong"}}),
        ("/auth/login", {"json": UNKNOWN_LOGIN}),
    ]
    for path, kwargs in attempts:
        response = await limited_client.post(path, **kwargs)
        assert response.status_code == 429, path


async def test_concurrent_burst_over_the_three_routes_never_exceeds_the_budget(
    limited_client: httpx.AsyncClient,
) -> None:
    calls = []
    for _ in range(4):
        calls += [
            limited_client.post("/auth/login", json=UNKNOWN_LOGIN),
            limited_client.post("/auth/token", data={"username": "nobody@example.com", "password": "wrong"}),
            limited_client.post("/auth/register", json={"email": "short@example.com", "password": "short"}),
        ]

    responses = await asyncio.gather(*calls)

    statuses = [r.status_code for r in responses]
    assert statuses.count(429) == len(calls) - 3, statuses


async def test_rate_limit_does_not_apply_to_other_routes(limited_client: httpx.AsyncClient) -> None:
    for _ in range(4):
        await limited_client.post("/auth/login", json=UNKNOWN_LOGIN)

    assert (await limited_client.get("/health")).status_code == 200
    assert (await limited_client.post("/auth/refresh")).status_code == 401


async def test_spoofed_forwarded_for_does_not_reset_the_budget(limited_client: httpx.AsyncClient) -> None:
    for i in range(3):
        await limited_client.post("/auth/login", json=UNKNOWN_LOGIN, headers={"X-Forwarded-For": f"10.0.0.{i}"})

    response = await limited_client.post("/auth/login", json=UNKNOWN_LOGIN, headers={"X-Forwarded-For": "10.9.9.9"})

    assert response.status_code == 429


async def test_limiter_fails_open_when_redis_is_unreachable(settings: Settings) -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)

    async with running_app(settings, redis=unreachable, RATE_LIMIT_AUTH="1/minute") as client:
        responses = [await client.post("/auth/login", json=UNKNOWN_LOGIN) for _ in range(3)]

    assert [r.status_code for r in responses] == [401, 401, 401]
