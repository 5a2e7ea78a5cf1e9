"""A reset token is never logged: a real process at LOG_LEVEL=DEBUG, with its worker, mails one and has it used.

Log levels are fixed per process (the shared test app runs at WARNING), so the app runs in a child process whose
output is read whole. The child asks for a reset, the parent's SMTP server receives the email, the parent hands the
token back through a file, and the child resets the password with it; neither the token nor its hash is in any line.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import PROJECT_ROOT, Settings
from app.core.security import hash_refresh_token
from tests.integration.events.conftest import Mailbox, SMTPServer
from tests.support import UserMaker

CHILD = """
import asyncio, json, os, pathlib

import httpx

from app.config import Settings
from app.main import create_app


async def main() -> None:
    app = create_app(Settings.from_env(json.loads(os.environ["CHILD_ENV"])))
    handoff = pathlib.Path(os.environ["CHILD_HANDOFF"])
    async with app.lifespan():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            forgot = await client.post("/auth/password/forgot", json={"email": os.environ["CHILD_EMAIL"]})
            assert forgot.status_code == 202, forgot.text
            for _ in range(300):
                if handoff.exists() and handoff.read_text():
                    break
                await asyncio.sleep(0.1)
            body = {"token": handoff.read_text(), "new_password": "a-brand-new-password"}
            reset = await client.post("/auth/password/reset", json=body)
            assert reset.status_code == 204, reset.text


asyncio.run(main())
"""


async def test_neither_the_reset_token_nor_its_hash_appears_in_any_log_line(
    settings: Settings,
    smtp_server: SMTPServer,
    mailbox: Mailbox,
    users: UserMaker,
    session: AsyncSession,
    tmp_path: Path,
) -> None:
    user = await users()
    handoff = tmp_path / "token"
    child_env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "JWT_SECRET": settings.jwt_secret,
        "LOG_LEVEL": "DEBUG",
        "WORKER_IN_PROCESS": "true",
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_TLS": "none",
        "RATE_LIMIT_AUTH": "100000/minute",
        "DB_POOL_MODE": settings.db_pool_mode,
        "WORKER_SHUTDOWN_GRACE_SECONDS": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "CHILD_ENV": json.dumps(child_env),
            "CHILD_EMAIL": user.email,
            "CHILD_HANDOFF": str(handoff),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output = asyncio.ensure_future(asyncio.wait_for(process.communicate(), timeout=90))
    (message,) = await mailbox.wait_for(1, within=60)
    text = message.get_body(("plain",))
    assert text is not None
    found = re.search(r"token=([A-Za-z0-9_-]+)", str(text.get_content()))
    assert found
    token = found[1]
    handoff.write_text(token)
    stdout, stderr = await output

    assert process.returncode == 0, stderr.decode()[-3000:]
    logs = stdout.decode() + stderr.decode()
    assert '"email_sent"' in logs  # the worker's sending was logged (at DEBUG, SAQ logs its jobs too)
    assert token not in logs
    assert hash_refresh_token(token) not in logs
