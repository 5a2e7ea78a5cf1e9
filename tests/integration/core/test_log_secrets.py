"""No secret reaches the logs, when things fail where it hurts — read from the output of real processes.

An API process (uvicorn, as the image runs it) and a worker process (``litestar workers run``) are started with a
configuration full of real secrets: a PostgreSQL role with a password, a Redis URL with a password, an SMTP server
that requires a login and refuses it, a random JWT secret. Then: a customer logs in and orders (the worker's email
job fails on the SMTP login, and SAQ logs the failed job with its traceback), and database triggers make login,
registration, refresh and a profile change fail with an error the code does not classify (a 500, logged with its
traceback while the request body, the settings, the token and the cookie are in the frames' local variables), and
so does ``litestar users create``.
Everything both processes wrote is searched for every secret, whole and in pieces.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.config import PROJECT_ROOT, Settings
from tests.conftest import Servers, _admin_execute
from tests.support import AddressMaker, ProductMaker, UserMaker, api_and_worker, free_port, process_env

pytestmark = pytest.mark.slow

USER_PASSWORD = "user-pw-" + secrets.token_urlsafe(12)
NEW_USER_PASSWORD = "new-user-pw-" + secrets.token_urlsafe(12)
CLI_PASSWORD = "cli-pw-" + secrets.token_urlsafe(12)
JWT_SECRET = "jwt-" + secrets.token_urlsafe(40)
DB_PASSWORD = "db:p@ss/" + secrets.token_urlsafe(12)  # URL-special characters: percent-encoded in DATABASE_URL
REDIS_PASSWORD = "redis-pw-" + secrets.token_urlsafe(12)
SMTP_PASSWORD = "smtp-pw-" + secrets.token_urlsafe(12)
EXPLODING_EMAIL = "explode-on-insert@example.com"
ADDRESS = {
    "recipient_name": "Alice Example",
    "line1": "1 Main Street",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}

#: A fault PostgreSQL raises with an SQLSTATE (P0001, raise_exception) that no handler classifies: a 500.
FAULTS = """
CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$;
CREATE TRIGGER injected_user_insert BEFORE INSERT ON users
  FOR EACH ROW WHEN (NEW.email = '{email}') EXECUTE FUNCTION injected_fault();
CREATE TRIGGER injected_user_update BEFORE UPDATE ON users
  FOR EACH ROW WHEN (NEW.id = '{user_id}') EXECUTE FUNCTION injected_fault();
CREATE TRIGGER injected_address BEFORE INSERT ON addresses
  FOR EACH ROW WHEN (NEW.user_id = '{user_id}') EXECUTE FUNCTION injected_fault();
CREATE TRIGGER injected_refresh BEFORE INSERT OR UPDATE ON refresh_token_families
  FOR EACH ROW WHEN (NEW.user_id = '{user_id}') EXECUTE FUNCTION injected_fault();
"""
NO_FAULTS = """
DROP TRIGGER IF EXISTS injected_user_insert ON users;
DROP TRIGGER IF EXISTS injected_user_update ON users;
DROP TRIGGER IF EXISTS injected_address ON addresses;
DROP TRIGGER IF EXISTS injected_refresh ON refresh_token_families;
DROP FUNCTION IF EXISTS injected_fault();
"""


@dataclass(frozen=True)
class FailedRun:
    output: str
    secrets: dict[str, str]
    statuses: dict[str, int]
    smtp_logins_refused: int


class _RefusingAuthenticator:
    """An SMTP server's authenticator that refuses every login (and counts them)."""

    def __init__(self) -> None:
        self.refused = 0

    def __call__(self, *_: Any) -> AuthResult:
        self.refused += 1
        return AuthResult(success=False, handled=False)


class _AcceptingHandler:
    async def handle_DATA(self, *_: Any) -> str:
        return "250 Message accepted"


@pytest.fixture(scope="module")
def refusing_smtp() -> Iterator[tuple[int, _RefusingAuthenticator]]:
    authenticator = _RefusingAuthenticator()
    controller = Controller(
        _AcceptingHandler(),
        hostname="127.0.0.1",
        port=free_port(),
        auth_required=True,
        auth_require_tls=False,
        authenticator=authenticator,
    )
    controller.start()
    yield controller.port, authenticator
    controller.stop()


@pytest.fixture(scope="module")
async def database_role(servers: Servers, settings: Settings, engine: AsyncEngine) -> AsyncIterator[str]:
    """``DATABASE_URL`` of a role of its own with a real password (on a trust-auth server it is not checked)."""
    if settings.db_pool_mode == "transaction":
        # The CI proxy (.ci/with-pgbouncer) lets through the roles of its auth file only; the pooled run covers the
        # data path, the session runs cover the logs.
        pytest.skip("the pooling proxy of the test run knows no role but the server's own")
    assert settings.database_url is not None
    role = f"orders_log_{uuid.uuid4().hex[:8]}"
    await _admin_execute(servers.admin_database_url, f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{DB_PASSWORD}'")
    async with engine.begin() as conn:
        for grant in ("ALL ON ALL TABLES", "ALL ON ALL SEQUENCES", "ALL ON ALL FUNCTIONS"):
            await conn.execute(text(f'GRANT {grant} IN SCHEMA public TO "{role}"'))
    url = make_url(settings.database_url).set(username=role, password=DB_PASSWORD)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP OWNED BY "{role}"'))
        await _admin_execute(servers.admin_database_url, f'DROP ROLE "{role}"')


def _redis_url_with_password(url: str) -> str:
    """The session's Redis, logged into as ``default`` with a password (a server without one accepts any)."""
    scheme, rest = url.split("://", 1)
    if "@" in rest:  # it has credentials already: keep the real ones
        return url
    return f"{scheme}://default:{quote(REDIS_PASSWORD, safe='')}@{rest}"


async def _wait_for_line(log: Path, needle: str, within: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while needle not in await asyncio.to_thread(log.read_text, errors="replace"):
        assert asyncio.get_running_loop().time() < deadline, f"no log line with {needle!r}"
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def failed_run(
    settings: Settings,
    engine: AsyncEngine,
    database_role: str,
    refusing_smtp: tuple[int, _RefusingAuthenticator],
    tmp_path_factory: pytest.TempPathFactory,
) -> FailedRun:
    assert settings.redis_url is not None
    smtp_port, authenticator = refusing_smtp
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        user = await UserMaker(session)(password=USER_PASSWORD)
        address = await AddressMaker(session)(user)
        product = await ProductMaker(session)(stock=5)
    env = process_env(
        settings,
        DATABASE_URL=database_role,
        REDIS_URL=_redis_url_with_password(settings.redis_url),
        JWT_SECRET=JWT_SECRET,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        SMTP_TLS="none",
        SMTP_USERNAME="orders",
        SMTP_PASSWORD=SMTP_PASSWORD,
        EMAIL_MAX_ATTEMPTS="2",
        EMAIL_RETRY_DELAY="0.1",
        COOKIE_SECURE="false",
        RATE_LIMIT_AUTH="100000/minute",
        LOG_LEVEL="INFO",
        DB_POOL_SIZE="3",
        LITESTAR_APP="app.main:app",
    )
    log_path = tmp_path_factory.mktemp("log_secrets") / "output.log"
    statuses: dict[str, int] = {}
    found: dict[str, str] = {}
    try:
        with log_path.open("wb") as log:
            async with api_and_worker(env, log) as base, httpx.AsyncClient(base_url=base) as client:
                login = await client.post("/auth/login", json={"email": user.email, "password": USER_PASSWORD})
                assert login.status_code == 200, login.text
                found["access token"] = login.json()["access_token"]
                found["refresh cookie"] = login.cookies["refresh_token"]
                bearer = {"Authorization": f"Bearer {found['access token']}"}
                order = {
                    "items": [{"product_id": str(product.id), "quantity": 1}],
                    "shipping_address_id": str(address.id),
                }
                placed = await client.post("/orders", json=order, headers=bearer)
                assert placed.status_code == 201, placed.text

                await _run_script(engine, FAULTS.format(email=EXPLODING_EMAIL, user_id=user.id))
                statuses["login"] = (
                    await client.post("/auth/login", json={"email": user.email, "password": USER_PASSWORD})
                ).status_code
                statuses["register"] = (
                    await client.post("/auth/register", json={"email": EXPLODING_EMAIL, "password": NEW_USER_PASSWORD})
                ).status_code
                statuses["refresh"] = (
                    await client.post("/auth/refresh", cookies={"refresh_token": found["refresh cookie"]})
                ).status_code
                statuses["address"] = (await client.post("/addresses", json=ADDRESS, headers=bearer)).status_code
                # The CLI, failing the same way: its uncaught exception goes through the same log pipeline.
                command = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "litestar", "users", "create", "--email", EXPLODING_EMAIL,
                    "--password", CLI_PASSWORD, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log,
                )  # fmt: skip
                statuses["cli"] = await asyncio.wait_for(command.wait(), 120)
                await _wait_for_line(log_path, "Error processing job")
    finally:
        await _run_script(engine, NO_FAULTS)
        await _empty_tables(engine)
    return FailedRun(
        output=log_path.read_text(errors="replace"),
        secrets={
            **found,
            "JWT secret": JWT_SECRET,
            "database password": DB_PASSWORD,
            "Redis password": REDIS_PASSWORD,
            "SMTP password": SMTP_PASSWORD,
            "user's password": USER_PASSWORD,
            "new user's password": NEW_USER_PASSWORD,
            "password given to the CLI": CLI_PASSWORD,
        },
        statuses=statuses,
        smtp_logins_refused=authenticator.refused,
    )


async def _run_script(engine: AsyncEngine, sql: str) -> None:
    """Several statements in one go (the driver's simple query protocol; a prepared statement holds only one)."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute(sql)  # type: ignore[union-attr]


async def _empty_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        tables = (
            await conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename NOT IN ('alembic_versions', 'roles')"
                )
            )
        ).scalars()
        await conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))


def _pieces(secret: str, size: int = 12) -> set[str]:
    """The secret and every run of ``size`` of its characters (a truncated value still leaks its part)."""
    if secret.count(".") == 2:  # a JWT: its header is the same for every token, the rest is the secret part
        secret = secret.split(".", 1)[1]
    return {secret} | {secret[i : i + size] for i in range(len(secret) - size + 1)}


def test_the_faults_happened(failed_run: FailedRun) -> None:
    """The run failed where it should, so the searches below are not vacuous."""
    assert failed_run.statuses == {"login": 500, "register": 500, "refresh": 500, "address": 500, "cli": 1}
    assert failed_run.smtp_logins_refused >= 1
    assert failed_run.output.count('"unhandled_exception"') >= 4
    assert '"uncaught_exception"' in failed_run.output  # the CLI's
    assert "Error processing job" in failed_run.output


@pytest.mark.parametrize(
    "name",
    [
        "JWT secret",
        "database password",
        "Redis password",
        "SMTP password",
        "user's password",
        "new user's password",
        "password given to the CLI",
        "access token",
        "refresh cookie",
    ],
)
def test_no_secret_appears_in_any_log_line(failed_run: FailedRun, name: str) -> None:
    secret = failed_run.secrets[name]
    leaked = sorted(piece for piece in _pieces(secret) if piece in failed_run.output)

    assert not leaked, f"the {name} is in the logs: {leaked[:3]}"


def test_tracebacks_name_frames_but_no_local_variables(failed_run: FailedRun) -> None:
    assert '"frames"' in failed_run.output
    assert '"locals"' not in failed_run.output
