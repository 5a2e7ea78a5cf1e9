"""Helpers shared by the tests: making users, their auth headers, products and addresses."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import IO, Any, cast

import httpx
from litestar import Litestar
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.components import components_of
from app.config import PROJECT_ROOT, Settings
from app.core.security import TokenCodec
from app.db.prepared import DirectPool
from app.domain.accounts.models import User, user_roles
from app.domain.addresses.models import Address
from app.domain.catalog.models import Product
from app.testing.factories import (
    DEFAULT_PASSWORD,
    AddressFactory,
    ProductFactory,
    UserFactory,
    password_hash_for,
)


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


async def run_litestar(settings: Settings, *args: str, **env: str) -> CommandResult:
    """``litestar *args`` in a process of its own, as a user runs it, against the session's servers.

    Awaited, not run blocking: the session's event loop keeps running meanwhile, so a background task of a test app
    (a dispatch round holding the outbox lock, say) can finish instead of making the command wait for it forever.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "litestar",
        *args,
        cwd=PROJECT_ROOT,
        env=process_env(settings, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return CommandResult(process.returncode, stdout.decode(), stderr.decode())


COMMAND_TIMEOUT_S = 120.0


def process_env(settings: Settings, **env: str) -> dict[str, str]:
    """The environment of a process of the app's own (API, worker, CLI) against the session's servers: this process's
    environment, the session's database, Redis and JWT secret, then ``env`` (which may replace any of them)."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "JWT_SECRET": settings.jwt_secret,
        **env,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_api(port: int, env: dict[str, str], log: IO[bytes], *args: str) -> asyncio.subprocess.Process:
    """``uvicorn app.main:app`` on 127.0.0.1:``port``, as the image runs it, writing to ``log``."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--no-access-log", *args,
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log,
    )  # fmt: skip


async def start_worker(env: dict[str, str], log: IO[bytes]) -> asyncio.subprocess.Process:
    """``litestar workers run``, as deployed, writing to ``log``."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "litestar", "workers", "run", cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log
    )


async def wait_ready(base: str, processes: Sequence[asyncio.subprocess.Process], *, within: float) -> None:
    """Poll ``{base}/ready`` until it answers 200; fail as soon as one of ``processes`` exits, or after ``within`` s."""
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient(base_url=base) as client:
        while True:
            for process in processes:
                assert process.returncode is None, f"a process of {base} exited with {process.returncode}"
            try:
                if (await client.get("/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert asyncio.get_running_loop().time() < deadline, f"{base} did not become ready"
            await asyncio.sleep(0.2)


@asynccontextmanager
async def api_and_worker(env: dict[str, str], log: IO[bytes], *, stop_within: float = 15.0) -> AsyncIterator[str]:
    """An API process on a free port and a worker process, both writing to ``log``; yields the API's base URL once it
    is ready (60 s at most), and stops both when the block is left."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = [await start_api(port, env, log), await start_worker(env, log)]
    try:
        await wait_ready(base, started, within=60)
        yield base
    finally:
        await stop_processes(started, within=stop_within)


async def stop_processes(processes: Sequence[asyncio.subprocess.Process], *, within: float = 15.0) -> None:
    """SIGTERM to each process still running, then up to ``within`` s each to exit before it is killed."""
    for process in processes:
        if process.returncode is None:
            process.terminate()
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), within)
        except TimeoutError:
            process.kill()


def asgi_transport(app: Litestar, **options: Any) -> httpx.ASGITransport:
    """An httpx transport that calls ``app`` in-process.

    httpx types the ASGI callable with plain dicts where Litestar declares TypedDicts for the same messages, so the
    two signatures differ only on paper; the cast says so once, here.
    """
    return httpx.ASGITransport(app=cast("Callable[..., Awaitable[None]]", app), **options)


def in_process_client(app: Litestar) -> httpx.AsyncClient:
    """An HTTP client that calls ``app`` in-process."""
    return httpx.AsyncClient(transport=asgi_transport(app), base_url="http://testserver")


class UserMaker:
    """Persists factory-built users with roles, in the given session (committed)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def __call__(
        self, *, roles: Sequence[str] = ("customer",), password: str = DEFAULT_PASSWORD, **overrides: Any
    ) -> User:
        user = UserFactory.build(password_hash=password_hash_for(password), **overrides)
        self.session.add(user)
        await self.session.flush()
        if roles:
            await self.session.execute(insert(user_roles), [{"user_id": user.id, "role_name": r} for r in roles])
        await self.session.commit()
        return user


class AuthHeaders:
    """``Authorization`` headers carrying a valid access token for a user, signed with the app's settings."""

    def __init__(self, app: Litestar | None = None, *, codec: TokenCodec | None = None) -> None:
        assert codec is not None or app is not None
        self.codec: TokenCodec = codec if codec is not None else components_of(app).tokens  # type: ignore[arg-type]

    @classmethod
    def for_settings(cls, settings: Settings) -> AuthHeaders:
        """Tokens any app built from ``settings`` (same secret and claims) accepts, without needing an app."""
        return cls(codec=TokenCodec.for_settings(settings))

    def __call__(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.codec.issue(user.id)}"}


class ProductMaker:
    """Persists factory-built products in the given session (committed). ``batch`` adds many in one flush."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def __call__(self, **overrides: Any) -> Product:
        return (await self.batch(1, **overrides))[0]

    async def batch(self, count: int, **overrides: Any) -> list[Product]:
        products = [ProductFactory.build(**overrides) for _ in range(count)]
        self.session.add_all(products)
        await self.session.commit()
        return products


class AddressMaker:
    """Persists a factory-built address of ``owner`` in the given session (committed)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def __call__(self, owner: User | uuid.UUID, **overrides: Any) -> Address:
        user_id = owner if isinstance(owner, uuid.UUID) else owner.id
        address = AddressFactory.build(user_id=user_id, **overrides)
        self.session.add(address)
        await self.session.commit()
        return address


#: Transaction control is part of every transaction, not of a query's shape.
_TRANSACTION_CONTROL = re.compile(r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
#: asyncpg's own queries when a connection first meets a type (once per connection, not per request).
_INTROSPECTION = re.compile(r"typeinfo_tree|set_config\('jit'|current_setting\('jit'\)")


@contextmanager
def _listening(engine: AsyncEngine, identifier: str, listener: Callable[..., None]) -> Iterator[None]:
    event.listen(engine.sync_engine, identifier, listener)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, identifier, listener)


@asynccontextmanager
async def count_statements(app: Litestar) -> AsyncIterator[list[str]]:
    """The statements ``app`` runs meanwhile, where production runs them: on its direct asyncpg pool (prepared
    statements, seen by asyncpg's query logger) and through its SQLAlchemy engine (ORM work). Transaction control
    (``BEGIN``/``COMMIT``) and asyncpg's type introspection are left out."""
    statements: list[str] = []

    def record(sql: str) -> None:
        if not _TRANSACTION_CONTROL.match(sql) and not _INTROSPECTION.search(sql):
            statements.append(sql)

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        record(statement)

    direct: DirectPool = components_of(app).direct
    engine: AsyncEngine = components_of(app).alchemy.get_engine()
    async with direct.observed(record):
        with _listening(engine, "before_cursor_execute", on_execute):
            yield statements


@contextmanager
def count_driver_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements run on asyncpg connections ``engine`` hands out meanwhile (SQL sent to the driver directly)."""
    statements: list[str] = []
    drivers: list[Any] = []

    def log(record: Any) -> None:
        if not _INTROSPECTION.search(record.query):
            statements.append(record.query)

    def on_checkout(_dbapi: Any, connection_record: Any, _proxy: Any) -> None:
        driver = connection_record.driver_connection
        driver.add_query_logger(log)
        drivers.append(driver)

    try:
        with _listening(engine, "checkout", on_checkout):
            yield statements
    finally:
        for driver in drivers:
            driver.remove_query_logger(log)


def webhook_redis_url(redis_url: str | None) -> str:
    """The webhook tests' Redis database, next to the session's (``redis_url``): their webhook queue is theirs alone,
    so no other test's worker can take their jobs with its own settings (which refuse http:// and private targets)."""
    assert redis_url is not None
    server, number = redis_url.rsplit("/", 1)
    return f"{server}/{(int(number or 0) + 1) % 16}"
