"""Account lifecycle over HTTP, without the worker: profile, password change, forgot/reset, verification (§2).

Tokens that the worker would email are made here with the worker's own function (``issue_one_time_token``); the
whole flow through SMTP is in ``tests/integration/events/test_account_emails.py``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.security import hash_refresh_token
from app.domain.accounts.lifecycle import issue_one_time_token
from app.domain.accounts.models import (
    EMAIL_VERIFICATION,
    PASSWORD_RESET,
    AccountEmail,
    AccountToken,
    RefreshTokenFamily,
    User,
)
from app.testing.factories import DEFAULT_PASSWORD
from tests.integration.accounts.credentials import log_in, refresh, refresh_token_of, with_refresh_cookie

NEW_PASSWORD = "a-brand-new-password"
HOUR = timedelta(hours=1)


def _bearer(response: httpx.Response) -> dict[str, str]:
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _token(db: AsyncSession, user: User, purpose: str, ttl: timedelta = HOUR) -> str:
    token = await issue_one_time_token(db, user.id, purpose, ttl)  # type: ignore[arg-type]
    await db.commit()
    return token


# ------------------------------------------------------------------------------------------------ PATCH /auth/me


async def test_patch_me_changes_the_name_and_null_clears_it(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    user = await make_user(full_name="Ada")

    renamed = await client.patch("/auth/me", json={"full_name": "Ada Lovelace"}, headers=auth_headers(user))
    cleared = await client.patch("/auth/me", json={"full_name": None}, headers=auth_headers(user))
    unchanged = await client.patch("/auth/me", json={}, headers=auth_headers(user))

    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["full_name"] == "Ada Lovelace"
    assert cleared.json()["full_name"] is None
    assert unchanged.json()["full_name"] is None
    assert unchanged.json()["email"] == user.email


@pytest.mark.parametrize("body", [{"email": "x@example.com"}, {"is_active": False}, {"full_name": "x" * 201}])
async def test_patch_me_refuses_other_fields_and_bad_values(
    client: httpx.AsyncClient, make_user, auth_headers, body: dict[str, object]
) -> None:
    response = await client.patch("/auth/me", json=body, headers=auth_headers(await make_user()))

    assert response.status_code == 422


async def test_patch_me_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.patch("/auth/me", json={"full_name": "x"})).status_code == 401


# ---------------------------------------------------------------------------------------- POST /auth/password


async def test_wrong_current_password_is_403_invalid_credentials_and_changes_nothing(
    client: httpx.AsyncClient, make_user
) -> None:
    user = await make_user()
    login = await log_in(client, user)

    response = await client.post(
        "/auth/password",
        json={"current_password": "not-the-password", "new_password": NEW_PASSWORD},
        headers=_bearer(login),
    )

    assert response.status_code == 403
    assert response.json()["code"] == "invalid_credentials"
    assert (await log_in(client, user)).status_code == 200
    assert (await client.get("/auth/me", headers=_bearer(login))).status_code == 200


async def test_password_change_keeps_the_callers_session_and_ends_the_others(
    client: httpx.AsyncClient, make_user
) -> None:
    user = await make_user()
    mine = await log_in(client, user)
    other = await log_in(client, user)

    response = await client.post(
        "/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=with_refresh_cookie(refresh_token_of(mine), _bearer(mine)),
    )

    assert response.status_code == 204, response.text
    assert (await client.get("/auth/me", headers=_bearer(mine))).status_code == 401  # issued before the change
    assert (await client.get("/auth/me", headers=_bearer(other))).status_code == 401
    assert (await refresh(client, refresh_token_of(other))).status_code == 401
    renewed = await refresh(client, refresh_token_of(mine))
    assert renewed.status_code == 200, renewed.text
    assert (await client.get("/auth/me", headers=_bearer(renewed))).status_code == 200
    assert (await log_in(client, user)).status_code == 401
    assert (await log_in(client, user, password=NEW_PASSWORD)).status_code == 200


async def test_password_change_ends_every_reset_token(client: httpx.AsyncClient, make_user, db: AsyncSession) -> None:
    user = await make_user()
    token = await _token(db, user, PASSWORD_RESET)
    login = await log_in(client, user)

    await client.post(
        "/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=_bearer(login),
    )
    response = await client.post("/auth/password/reset", json={"token": token, "new_password": "yet-another-one"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"


async def test_a_too_short_new_password_is_422(client: httpx.AsyncClient, make_user) -> None:
    login = await log_in(client, await make_user())

    response = await client.post(
        "/auth/password", json={"current_password": DEFAULT_PASSWORD, "new_password": "short"}, headers=_bearer(login)
    )

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["new_password"]


# --------------------------------------------------------------------------------- POST /auth/password/forgot


async def test_forgot_answers_the_same_for_unknown_inactive_and_active_accounts(
    client: httpx.AsyncClient, make_user, db: AsyncSession
) -> None:
    active = await make_user()
    inactive = await make_user(is_active=False)

    responses = [
        await client.post("/auth/password/forgot", json={"email": email})
        for email in (active.email, inactive.email, "nobody.here@example.com")
    ]

    assert {(r.status_code, r.content, r.headers["content-type"]) for r in responses} == {
        (202, b"{}", "application/json")
    }
    queued = (await db.scalars(select(AccountEmail.email).where(AccountEmail.kind == PASSWORD_RESET))).all()
    assert sorted(str(e) for e in queued) == sorted([active.email, inactive.email, "nobody.here@example.com"])


async def test_forgot_with_a_malformed_address_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/password/forgot", json={"email": "x<victim@evil.com>"})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["email"]


# ---------------------------------------------------------------------------------- POST /auth/password/reset


async def test_reset_sets_the_password_and_ends_sessions_tokens_and_other_reset_tokens(
    client: httpx.AsyncClient, make_user, db: AsyncSession
) -> None:
    user = await make_user()
    login = await log_in(client, user)
    token, other = await _token(db, user, PASSWORD_RESET), await _token(db, user, PASSWORD_RESET)

    response = await client.post("/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD})

    assert response.status_code == 204, response.text
    assert (await client.get("/auth/me", headers=_bearer(login))).status_code == 401
    assert (await refresh(client, refresh_token_of(login))).status_code == 401
    assert (await log_in(client, user)).status_code == 401
    assert (await log_in(client, user, password=NEW_PASSWORD)).status_code == 200
    again = await client.post("/auth/password/reset", json={"token": other, "new_password": "yet-another-one"})
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_token"
    reasons = (await db.scalars(select(RefreshTokenFamily.revoked_reason))).all()
    assert sorted(str(r) for r in reasons) == ["None", "password_changed"]  # the session before, the login after


@pytest.mark.parametrize("case", ["unknown", "used", "expired", "inactive", "verification token"])
async def test_reset_with_a_token_that_is_not_live_is_400_invalid_token(
    client: httpx.AsyncClient, make_user, db: AsyncSession, case: str
) -> None:
    user = await make_user()
    purpose = EMAIL_VERIFICATION if case == "verification token" else PASSWORD_RESET
    token = await _token(db, user, purpose, -HOUR if case == "expired" else HOUR)
    if case == "unknown":
        token = "x" * 43
    if case == "used":
        await client.post("/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD})
    if case == "inactive":
        await db.execute(update(User).where(User.id == user.id).values(is_active=False))
        await db.commit()

    response = await client.post("/auth/password/reset", json={"token": token, "new_password": "yet-another-one"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"
    assert response.headers["content-type"] == "application/problem+json"


async def test_only_the_hash_of_a_token_is_stored(make_user, db: AsyncSession) -> None:
    user = await make_user()

    token = await _token(db, user, PASSWORD_RESET)

    stored = (await db.scalars(select(AccountToken.token_hash))).all()
    assert stored == [hash_refresh_token(token)]
    assert len(token) >= 43  # 32 random bytes, URL-safe base64


async def test_two_simultaneous_resets_with_one_token_give_exactly_one_success(
    committed_client: httpx.AsyncClient, make_committed_user, engine: AsyncEngine
) -> None:
    user = await make_committed_user()
    async with async_sessionmaker(engine)() as session:
        token = await _token(session, user, PASSWORD_RESET)

    responses = await asyncio.gather(
        *(
            committed_client.post("/auth/password/reset", json={"token": token, "new_password": f"{NEW_PASSWORD}-{i}"})
            for i in range(2)
        )
    )

    assert sorted(r.status_code for r in responses) == [204, 400], [r.text for r in responses]
    winner = next(i for i, r in enumerate(responses) if r.status_code == 204)
    assert (await log_in(committed_client, user, password=f"{NEW_PASSWORD}-{winner}")).status_code == 200


async def test_two_simultaneous_verifications_with_one_token_give_exactly_one_success(
    committed_client: httpx.AsyncClient, make_committed_user, engine: AsyncEngine
) -> None:
    user = await make_committed_user()
    async with async_sessionmaker(engine)() as session:
        token = await _token(session, user, EMAIL_VERIFICATION)

    responses = await asyncio.gather(*(committed_client.post("/auth/verify", json={"token": token}) for _ in range(2)))

    assert sorted(r.status_code for r in responses) == [204, 400], [r.text for r in responses]


# ------------------------------------------------------------------------------------------ verification routes


async def test_registering_queues_a_verification_email(client: httpx.AsyncClient, db: AsyncSession) -> None:
    response = await client.post("/auth/register", json={"email": "new.person@example.com", "password": "password-1"})

    assert response.status_code == 201
    queued = (await db.execute(select(AccountEmail.kind, AccountEmail.user_id))).all()
    assert [(kind, str(user_id)) for kind, user_id in queued] == [(EMAIL_VERIFICATION, response.json()["id"])]


async def test_verify_request_queues_an_email_and_answers_202(
    client: httpx.AsyncClient, make_user, auth_headers, db: AsyncSession
) -> None:
    user = await make_user()

    response = await client.post("/auth/verify/request", headers=auth_headers(user))

    assert response.status_code == 202
    assert response.json() == {}
    assert (await db.scalars(select(AccountEmail.user_id))).all() == [user.id]


async def test_verify_request_when_already_verified_is_409(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    user = await make_user(email_verified=True)

    response = await client.post("/auth/verify/request", headers=auth_headers(user))

    assert response.status_code == 409
    assert response.json()["code"] == "already_verified"


async def test_verify_marks_the_address_verified_once(
    client: httpx.AsyncClient, make_user, auth_headers, db: AsyncSession
) -> None:
    user = await make_user()
    token = await _token(db, user, EMAIL_VERIFICATION)

    first = await client.post("/auth/verify", json={"token": token})
    second = await client.post("/auth/verify", json={"token": token})

    assert first.status_code == 204, first.text
    assert second.status_code == 400
    assert second.json()["code"] == "invalid_token"
    assert (await client.get("/auth/me", headers=auth_headers(user))).json()["email_verified"] is True


async def test_verify_with_an_expired_token_is_400(client: httpx.AsyncClient, make_user, db: AsyncSession) -> None:
    token = await _token(db, await make_user(), EMAIL_VERIFICATION, -timedelta(seconds=1))

    response = await client.post("/auth/verify", json={"token": token})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"


async def test_an_access_token_issued_after_a_password_change_in_the_same_second_works(
    client: httpx.AsyncClient, make_user, db: AsyncSession
) -> None:
    user = await make_user()
    await db.execute(update(User).where(User.id == user.id).values(password_changed_at=datetime.now(UTC)))
    await db.commit()

    login = await log_in(client, user)

    assert (await client.get("/auth/me", headers=_bearer(login))).status_code == 200
