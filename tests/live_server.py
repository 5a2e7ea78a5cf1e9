"""The app as a real server: a uvicorn process on a free 127.0.0.1 port with a throwaway database of its own.

For tests that must talk to it the way a client does (schemathesis over HTTP, a browser).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from advanced_alchemy.alembic.commands import AlembicCommands
from sqlalchemy.engine import make_url

from app.config import PROJECT_ROOT, Settings, alchemy_config
from tests.conftest import Servers, _admin_execute

__all__ = ("LiveServer", "free_port", "live_server")


@dataclass(frozen=True)
class LiveServer:
    url: str
    database_url: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the server did not become healthy")


@contextmanager
def live_server(servers: Servers, settings: Settings, *, name: str) -> Iterator[LiveServer]:
    """Create and migrate database ``<name>_<random>``, serve the app on it, and drop both afterwards.

    The process gets the session's JWT secret, so tokens minted by the tests' ``TokenCodec`` are valid there too.
    """
    database = f"{name}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_execute(servers.admin_database_url, f'CREATE DATABASE "{database}"'))
    database_url = make_url(servers.admin_database_url).set(database=database).render_as_string(hide_password=False)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": servers.redis_url,
        "JWT_SECRET": settings.jwt_secret,
        "ACCESS_TOKEN_TTL": "3600",
        "COOKIE_SECURE": "false",
        "RATE_LIMIT_AUTH": "100000/minute",
        "EMAIL_BACKEND": "console",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_MODE": settings.db_pool_mode,
    }
    try:
        AlembicCommands(sqlalchemy_config=alchemy_config(Settings.from_env(env))).upgrade(revision="head")
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--no-access-log"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_healthy(url, process)
            yield LiveServer(url, database_url)
        finally:
            process.terminate()
            process.wait(timeout=10)
    finally:
        asyncio.run(_admin_execute(servers.admin_database_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
