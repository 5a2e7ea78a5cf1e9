"""POST /auth/login and POST /auth/token: the access token, the refresh cookie, and uniform refusals."""

from __future__ import annotations

import uuid

import httpx
import jwt
from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import RefreshTokenFamily, User
from app.testing.factories import DEFAULT_PASSWORD
from tests.integration.accounts.credentials import log_in, refresh_set_cookie
from tests.integration.core.dedicated_app import running_app


async def test_login_returns_bearer_access_token_for_the_user(
    client: httpx.AsyncClient, make_user, settings: Settings
) -> None:
    user = await make_user()

    response = await log_in(client, user)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl
    claims = jwt.decode(body["access_token"], settings.jwt_secret, algorithms=["HS256"])
    assert claims["sub"] == str(user.id)
    assert claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl
    assert claims["jti"]


async def test_login_response_is_not_cacheable(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()

    response = await log_in(client, user)

    assert response.headers["cache-control"] == "no-store"


async def test_login_access_token_authenticates_me(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()
    token = (await log_in(client, user)).json()["access_token"]

    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert me.status_code == 200
    assert me.json()["id"] == str(user.id)


async def test_login_sets_httponly_strict_refresh_cookie_scoped_to_auth(
    client: httpx.AsyncClient, make_user, settings: Settings
) -> None:
    user = await make_user()

    cookie = refresh_set_cookie(await log_in(client, user))

    assert len(cookie.value) >= 32
    assert "httponly" in cookie.attributes
    assert cookie.attributes["samesite"].lower() == "strict"
    assert cookie.attributes["path"] == "/auth"
    assert cookie.attributes["max-age"] == str(settings.refresh_token_ttl)


async def test_login_cookie_is_not_secure_when_cookie_secure_false(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()

    cookie = refresh_set_cookie(await log_in(client, user))

    assert "secure" not in cookie.attributes


async def test_login_cookie_is_secure_when_cookie_secure_true(settings: Settings, make_committed_user) -> None:
    user = await make_committed_user()

    async with running_app(settings, COOKIE_SECURE="true") as client:
        response = await log_in(client, user)

    assert response.status_code == 200, response.text
    assert "secure" in refresh_set_cookie(response).attributes


async def test_login_starts_a_session_with_the_user_agent(
    client: httpx.AsyncClient, make_user, db: AsyncSession
) -> None:
    user = await make_user()

    await log_in(client, user, user_agent="Firefox/130 (login test)")

    families = (await db.scalars(select(RefreshTokenFamily).where(RefreshTokenFamily.user_id == user.id))).all()
    assert [f.user_agent for f in families] == ["Firefox/130 (login test)"]
    assert families[0].revoked_at is None


async def test_login_email_is_case_insensitive(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()

    response = await client.post("/auth/login", json={"email": user.email.upper(), "password": "correct-horse-battery"})

    assert response.status_code == 200, response.text


async def test_wrong_email_wrong_password_and_inactive_user_get_identical_401(
    client: httpx.AsyncClient, make_user
) -> None:
    user = await make_user(password="the-right-one")
    inactive = await make_user(password="the-right-one", is_active=False)
    attempts = {
        "wrong email": {"email": f"nobody.{uuid.uuid4().hex[:8]}@example.com", "password": "the-right-one"},
        "wrong password": {"email": user.email, "password": "the-wrong-one"},
        "inactive user": {"email": inactive.email, "password": "the-right-one"},
    }

    responses = {name: await client.post("/auth/login", json=body) for name, body in attempts.items()}

    for name, response in responses.items():
        assert response.status_code == 401, name
        assert response.headers["content-type"] == "application/problem+json", name
        assert response.headers["www-authenticate"] == "Bearer", name
        assert response.json()["code"] == "invalid_credentials", name
        assert "set-cookie" not in response.headers, name
    bodies = [{k: v for k, v in r.json().items() if k != "request_id"} for r in responses.values()]
    assert bodies[0] == bodies[1] == bodies[2]


async def test_login_with_outdated_hash_parameters_rehashes_the_password(
    client: httpx.AsyncClient, make_user, db: AsyncSession
) -> None:
    user = await make_user()
    outdated = PasswordHasher(time_cost=1, memory_cost=8_192, parallelism=1).hash(DEFAULT_PASSWORD)
    await db.execute(update(User).where(User.id == user.id).values(password_hash=outdated))
    await db.commit()

    response = await log_in(client, user)

    assert response.status_code == 200, response.text
    stored = await db.scalar(select(User.password_hash).where(User.id == user.id))
    assert stored is not None
    assert stored != outdated
    assert "m=19456,t=2,p=1" in stored
    assert PasswordHasher().verify(stored, DEFAULT_PASSWORD)


async def test_token_form_login_returns_bearer_access_token_and_cookie(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()

    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": user.email, "password": "correct-horse-battery"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    assert refresh_set_cookie(response).attributes["path"] == "/auth"
    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert me.json()["email"] == user.email


async def test_token_form_login_with_wrong_password_is_401_invalid_credentials(
    client: httpx.AsyncClient, make_user
) -> None:
    user = await make_user()

    response = await client.post("/auth/token", data={"username": user.email, "password": "not-the-password"})

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert response.headers["www-authenticate"] == "Bearer"
