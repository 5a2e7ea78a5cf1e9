"""The access log, as an operator's log pipeline sees it: one JSON object per request, no credentials.

Log levels and processors are fixed per process the first time a logger is used, and the shared test app runs at
WARNING, so the app is started once, in a child process at ``LOG_LEVEL=INFO``, and its stdout is read line by line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.config import PROJECT_ROOT, Settings
from app.core.security import TokenCodec
from app.domain.accounts.models import User
from tests.support import UserMaker

PASSWORD = "hunter2-hunter2"
UNKNOWN_SESSION = uuid.uuid4()

CHILD = """
import asyncio, json, os

import httpx

from app.config import Settings
from app.main import create_app


async def main() -> None:
    app = create_app(Settings.from_env(json.loads(os.environ["CHILD_ENV"])))
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for request in json.loads(os.environ["CHILD_REQUESTS"]):
                await client.request(**request)


asyncio.run(main())
"""


@dataclass(frozen=True)
class AccessLogRun:
    user_id: uuid.UUID
    token: str
    lines: list[str]

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def access(self, request_id: str) -> dict[str, Any]:
        [entry] = [e for e in self.entries if e.get("logger") == "app.access" and e.get("request_id") == request_id]
        return entry


async def _run_child(settings: Settings, requests: list[dict[str, Any]]) -> list[str]:
    child_env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "JWT_SECRET": settings.jwt_secret,
        "LOG_LEVEL": "INFO",
        "EMAIL_BACKEND": "console",
        "RATE_LIMIT_AUTH": "100000/minute",
        "DB_POOL_MODE": settings.db_pool_mode,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        cwd=PROJECT_ROOT,
        env={**os.environ, "CHILD_ENV": json.dumps(child_env), "CHILD_REQUESTS": json.dumps(requests)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    return [line for line in stdout.decode().splitlines() if line.strip()]


@pytest.fixture(scope="module")
async def run(settings: Settings, engine: AsyncEngine) -> AsyncIterator[AccessLogRun]:
    """One child process serving a few requests of a committed user; the user is deleted afterwards."""
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        user = await UserMaker(session)(password=PASSWORD)
    codec = TokenCodec(
        secret=settings.jwt_secret,
        algorithm=settings.jwt_algorithm,
        ttl=timedelta(seconds=settings.access_token_ttl),
    )
    token = codec.issue(user.id)
    bearer = {"Authorization": f"Bearer {token}"}
    requests = [
        {"method": "GET", "url": "/auth/me", "headers": {**bearer, "X-Request-ID": "log-me"}},
        {"method": "GET", "url": "/no/such/route", "headers": {"X-Request-ID": "log-404"}},
        {
            "method": "DELETE",
            "url": f"/auth/sessions/{UNKNOWN_SESSION}",
            "headers": {**bearer, "X-Request-ID": "log-tpl"},
        },
        {"method": "GET", "url": f"/ws/orders?token={token}", "headers": {"X-Request-ID": "log-ws"}},
        {
            "method": "POST",
            "url": "/auth/login",
            "json": {"email": user.email, "password": PASSWORD},
            "headers": {"X-Request-ID": "log-login"},
        },
    ]
    try:
        yield AccessLogRun(user_id=user.id, token=token, lines=await _run_child(settings, requests))
    finally:
        async with engine.begin() as conn:
            await conn.execute(delete(User).where(User.id == user.id))


async def test_every_log_line_is_one_json_object(run: AccessLogRun) -> None:
    assert run.lines
    for line in run.lines:
        assert isinstance(json.loads(line), dict), line


async def test_access_log_has_one_line_per_request(run: AccessLogRun) -> None:
    access = [e for e in run.entries if e.get("logger") == "app.access"]

    assert sorted(e["request_id"] for e in access) == sorted(["log-me", "log-404", "log-tpl", "log-ws", "log-login"])


async def test_access_log_line_carries_request_id_route_status_latency_and_user(run: AccessLogRun) -> None:
    entry = run.access("log-me")

    assert entry["route"] == "/auth/me"
    assert entry["status"] == 200
    assert entry["user_id"] == str(run.user_id)
    assert entry["method"] == "GET"
    assert isinstance(entry["latency_ms"], int | float)
    assert entry["latency_ms"] >= 0
    assert entry["level"] == "info"
    assert entry["timestamp"]


async def test_access_log_route_is_the_template_not_the_concrete_path(run: AccessLogRun) -> None:
    entry = run.access("log-tpl")

    assert entry["route"].startswith("/auth/sessions/{session_id")
    assert str(UNKNOWN_SESSION) not in entry["route"]
    assert entry["status"] == 404


async def test_access_log_of_unmatched_route_has_status_and_no_user(run: AccessLogRun) -> None:
    entry = run.access("log-404")

    assert entry["status"] == 404
    assert entry["user_id"] is None


async def test_logs_never_contain_tokens_or_passwords(run: AccessLogRun) -> None:
    output = "\n".join(run.lines)

    assert run.token not in output
    assert run.token.split(".")[1] not in output  # not even the payload part
    assert PASSWORD not in output
    assert "refresh_token=" not in output
