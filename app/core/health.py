"""Liveness (``/health``), readiness (``/ready``) and metrics (``/metrics``)."""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import msgspec
from litestar import Controller, MediaType, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import PROBLEM_JSON
from app.core.logging import get_logger
from app.core.openapi import problems
from app.core.request_context import request_id_of

__all__ = ("HealthController", "MetricsController", "ReadinessProbe")

logger = get_logger("app.health")

CHECK_TIMEOUT: Final = 2.0


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


#: Every column of every table in the schema the connection works in (one catalog read, well under 1 ms).
_COLUMNS: Final = text(
    "SELECT c.relname, a.attname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
    "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') "
    "AND a.attnum > 0 AND NOT a.attisdropped"
)


class ReadinessProbe:
    """Answers whether PostgreSQL and Redis respond and the schema is what this code expects.

    The schema is checked twice: the migration recorded in the version table must be this code's head, and every
    table and column the models use must exist. The second catches what the first cannot see — a table renamed or
    dropped by hand, a restore of an older dump — which would otherwise surface only as failing requests.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis,
        *,
        version_table: str,
        expected_heads: frozenset[str],
        expected_columns: Mapping[str, frozenset[str]] | None = None,
        draining: Callable[[], bool] = lambda: False,
    ) -> None:
        self._draining = draining
        self._engine = engine
        self._redis = redis
        self._version_query = text(f"SELECT version_num FROM {version_table}")  # noqa: S608 - from config
        self._expected = expected_heads
        self._columns = dict(expected_columns or {})

    async def check(self) -> dict[str, str]:
        if self._draining():  # SIGTERM received (app.core.shutdown): out of rotation whatever the backends say
            return {"process": "shutting down"}
        database, redis = await asyncio.gather(
            self._timed(self._check_database()),
            self._timed(self._check_redis()),
            return_exceptions=False,
        )
        return {"database": database, "redis": redis}

    async def _timed(self, probe: Awaitable[str]) -> str:
        try:
            return await asyncio.wait_for(probe, CHECK_TIMEOUT)
        except TimeoutError:
            return "timeout"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the kind is logged, not returned
            logger.warning("readiness_check_failed", error=type(exc).__name__)
            return "unreachable"

    async def _check_database(self) -> str:
        async with self._engine.connect() as conn:
            applied = frozenset((await conn.execute(self._version_query)).scalars())
            if applied != self._expected:
                return "migrations pending"
            if not self._columns:
                return "ok"
            present: dict[str, set[str]] = {}
            for table, column in (await conn.execute(_COLUMNS)).tuples():
                present.setdefault(table, set()).add(column)
        return schema_mismatch(self._columns, present) or "ok"

    async def _check_redis(self) -> str:
        await self._redis.ping()
        return "ok"


def schema_mismatch(expected: Mapping[str, frozenset[str]], present: Mapping[str, set[str]]) -> str | None:
    """``schema mismatch: table products missing, column users.email missing`` (at most 5 named), or None."""
    problems: list[str] = []
    for table, columns in sorted(expected.items()):
        if table not in present:
            problems.append(f"table {table} missing")
            continue
        problems += [f"column {table}.{column} missing" for column in sorted(columns - present[table])]
    if not problems:
        return None
    more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
    return "schema mismatch: " + ", ".join(problems[:5]) + more


class HealthController(Controller):
    tags = ["operations"]
    security = [{}]

    @get("/health", exclude_from_auth=True)
    async def health(self) -> Health:
        """Liveness: 200 while the process runs."""
        return Health(status="ok")

    @get("/ready", exclude_from_auth=True, responses=problems(503))
    async def ready(
        self,
        request: Request[Any, Any, Any],
        readiness: NamedDependency[ReadinessProbe],
    ) -> Response[Any]:
        """Readiness: 200 when PostgreSQL and Redis answer and migrations are applied; 503 naming what failed.

        From SIGTERM on, 503 "process shutting down" (the drain, see ``app.core.shutdown``)."""
        checks = await readiness.check()
        failed = [name for name, state in checks.items() if state != "ok"]
        if not failed:
            return Response(
                Readiness(status="ok", checks=checks),
                status_code=HTTP_200_OK,
                media_type=MediaType.JSON,
            )
        body = {
            "type": "urn:orders:problem:not_ready",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "Not ready: " + ", ".join(f"{name} {checks[name]}" for name in failed),
            "code": "not_ready",
            "request_id": request_id_of(request.scope),
            "checks": checks,
        }
        return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE, media_type=PROBLEM_JSON)


MetricsRefresher = Callable[[], Awaitable[None]]


def require_metrics_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """With ``METRICS_TOKEN`` set, only ``Authorization: Bearer <METRICS_TOKEN>`` may scrape (401 otherwise).

    The metrics name every route and how often each fails; that is a map of the service for whoever can read it.
    The comparison takes the same time wherever the first wrong character is (``hmac.compare_digest``).
    """
    expected: str | None = connection.app.state.components.settings.metrics_token
    if expected is None:
        return
    scheme, _sep, presented = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise NotAuthorizedException("A valid metrics token is required")


class MetricsController(Controller):
    """Prometheus text exposition: request counts and latencies by route and status, plus gauges refreshed on scrape.

    Gauges that need I/O (queue depth) are brought up to date by ``refresh_metrics`` just before rendering; a slow or
    failing refresh never fails the scrape.
    """

    path = "/metrics"
    tags = ["operations"]
    security = [{}]
    include_in_schema = False
    guards = [require_metrics_token]

    @get("/", exclude_from_auth=True)
    async def metrics(self, refresh_metrics: NamedDependency[MetricsRefresher]) -> Response[bytes]:
        try:
            await asyncio.wait_for(refresh_metrics(), CHECK_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - stale gauges beat a failed scrape
            logger.warning("metrics_refresh_failed", error=type(exc).__name__)
        registry = REGISTRY
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
