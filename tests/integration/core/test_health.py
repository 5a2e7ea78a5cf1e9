"""/health (liveness) and /ready (PostgreSQL, Redis and the migration head)."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.components import migration_heads
from app.config import MIGRATIONS_VERSION_TABLE, Settings
from app.core.health import ReadinessProbe
from tests.integration.core.dedicated_app import running_app


async def test_health_is_200_ok_without_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_is_200_with_every_check_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_ready_is_503_naming_redis_when_redis_is_unreachable(settings: Settings) -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)

    async with running_app(settings, redis=unreachable) as client:
        response = await client.get("/ready")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["status"] == 503
    assert "redis" in body["detail"]
    assert "database" not in body["detail"]
    assert body["checks"]["redis"] != "ok"
    assert body["checks"]["database"] == "ok"
    assert body["request_id"] == response.headers["x-request-id"]


async def test_health_stays_200_when_redis_is_unreachable(settings: Settings) -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)

    async with running_app(settings, redis=unreachable) as client:
        response = await client.get("/health")

    assert response.status_code == 200


async def test_readiness_reports_pending_migrations_when_database_is_behind_the_head(
    engine: AsyncEngine, redis: Redis
) -> None:
    ahead = ReadinessProbe(
        engine, redis, version_table=MIGRATIONS_VERSION_TABLE, expected_heads=frozenset({"a-newer-revision"})
    )
    current = ReadinessProbe(engine, redis, version_table=MIGRATIONS_VERSION_TABLE, expected_heads=migration_heads())

    assert await ahead.check() == {"database": "migrations pending", "redis": "ok"}
    assert await current.check() == {"database": "ok", "redis": "ok"}
