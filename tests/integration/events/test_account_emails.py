"""Account emails through the real path: outbox row → relay → SAQ job → SMTP (aiosmtpd), and the flows they carry.

register → verification email → verify; forgot → email → reset → old credentials refused, new password works.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws
from litestar import Litestar
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.domain.accounts.models import PASSWORD_RESET, AccountEmail, AccountToken
from app.testing.factories import DEFAULT_PASSWORD
from tests.integration.accounts.credentials import log_in, refresh, refresh_token_of
from tests.integration.events.conftest import Mailbox, bearer, ws_client
from tests.integration.orders.conftest import Shopper
from tests.support import UserMaker

NEW_PASSWORD = "a-brand-new-password"
BASE = "http://127.0.0.1:8000"


def _parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


def _token_in(message: EmailMessage, page: str) -> str:
    text, html = _parts(message)
    found = re.search(re.escape(f"{BASE}{page}?token=") + r"([A-Za-z0-9_-]{43,})", text)
    assert found, text
    assert f"{BASE}{page}?token={found[1]}" in html
    return found[1]


async def _wait_done(session: AsyncSession, count: int, within: float = 15.0) -> list[str | None]:
    """The outcomes of the outbox rows once ``count`` of them are done."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        outcomes = (await session.scalars(select(AccountEmail.outcome).where(AccountEmail.sent_at.is_not(None)))).all()
        await session.rollback()
        if len(outcomes) >= count:
            return list(outcomes)
        assert asyncio.get_running_loop().time() < deadline, f"only {len(outcomes)} account emails done"
        await asyncio.sleep(0.05)


async def test_register_sends_a_verification_email_whose_token_verifies_the_address(
    events_client: httpx.AsyncClient, mailbox: Mailbox, committed_db: None
) -> None:
    registered = await events_client.post(
        "/auth/register", json={"email": "new.customer@example.com", "password": "password-1"}
    )
    assert registered.status_code == 201, registered.text

    (message,) = await mailbox.wait_for(1)
    token = _token_in(message, "/verify-email")
    verified = await events_client.post("/auth/verify", json={"token": token})
    login = await events_client.post(
        "/auth/login", json={"email": "new.customer@example.com", "password": "password-1"}
    )
    me = await events_client.get("/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})

    assert message["To"] == "new.customer@example.com"
    assert message["Subject"] == "Confirm your email address"
    assert verified.status_code == 204, verified.text
    assert me.json()["email_verified"] is True


async def test_forgot_then_reset_refuses_the_old_credentials_and_accepts_the_new_password(
    events_client: httpx.AsyncClient, mailbox: Mailbox, users: UserMaker
) -> None:
    user = await users()
    before = await log_in(events_client, user)

    forgot = await events_client.post("/auth/password/forgot", json={"email": user.email.upper()})
    (message,) = await mailbox.wait_for(1)
    reset = await events_client.post(
        "/auth/password/reset", json={"token": _token_in(message, "/reset-password"), "new_password": NEW_PASSWORD}
    )

    assert forgot.status_code == 202
    assert forgot.json() == {}
    assert message["To"] == user.email
    assert reset.status_code == 204, reset.text
    assert (await log_in(events_client, user)).status_code == 401
    old_access = {"Authorization": f"Bearer {before.json()['access_token']}"}
    assert (await events_client.get("/auth/me", headers=old_access)).status_code == 401
    assert (await refresh(events_client, refresh_token_of(before))).status_code == 401
    after = await log_in(events_client, user, password=NEW_PASSWORD)
    assert after.status_code == 200
    assert (
        await events_client.get("/auth/me", headers={"Authorization": f"Bearer {after.json()['access_token']}"})
    ).status_code == 200


async def test_forgot_for_unknown_or_inactive_accounts_sends_nothing(
    events_client: httpx.AsyncClient, mailbox: Mailbox, users: UserMaker, session: AsyncSession
) -> None:
    inactive = await users(is_active=False)

    for email in ("nobody.here@example.com", inactive.email):
        assert (await events_client.post("/auth/password/forgot", json={"email": email})).status_code == 202

    assert await _wait_done(session, 2) == ["dropped", "dropped"]
    assert mailbox.messages == []
    assert await session.scalar(select(func.count()).select_from(AccountToken)) == 0


async def test_a_refused_message_is_retried_and_only_the_delivered_token_exists(
    events_client: httpx.AsyncClient, mailbox: Mailbox, users: UserMaker, session: AsyncSession
) -> None:
    user = await users()
    mailbox.fail_next = 2

    await events_client.post("/auth/password/forgot", json={"email": user.email})
    (message,) = await mailbox.wait_for(1)
    await _wait_done(session, 1)

    assert mailbox.attempts == 3
    assert await session.scalar(select(func.count()).select_from(AccountToken)) == 1
    reset = await events_client.post(
        "/auth/password/reset", json={"token": _token_in(message, "/reset-password"), "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 204


async def test_a_row_whose_job_was_lost_is_handed_over_again(
    events_app: Litestar, mailbox: Mailbox, users: UserMaker, session: AsyncSession, engine: AsyncEngine
) -> None:
    user = await users()
    async with engine.begin() as conn:  # as if it was queued 11 minutes ago and Redis then lost the job
        await conn.execute(
            insert(AccountEmail).values(
                kind=PASSWORD_RESET, email=user.email, enqueued_at=datetime.now(UTC) - timedelta(minutes=11)
            )
        )

    (message,) = await mailbox.wait_for(1)

    assert message["To"] == user.email


async def test_a_password_change_closes_the_users_sockets(
    events_app: Litestar, events_client: httpx.AsyncClient, alice: Shopper
) -> None:
    async with ws_client(events_app) as client, aconnect_ws(f"/ws/orders?token={bearer(alice.headers)}", client) as ws:
        login = await log_in(events_client, alice.user)
        response = await events_client.post(
            "/auth/password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        )
        assert response.status_code == 204, response.text
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text(timeout=10)

    assert closed.value.code == 1008
