"""POST /auth/refresh: rotation, reuse detection that revokes the whole family, and the race between two refreshes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.security import hash_refresh_token
from app.domain.accounts.models import RefreshToken, RefreshTokenFamily
from tests.integration.accounts.credentials import log_in, refresh, refresh_set_cookie, refresh_token_of


async def test_refresh_returns_new_access_token_and_rotated_cookie(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()
    first = refresh_token_of(await log_in(client, user))

    response = await refresh(client, first)

    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    cookie = refresh_set_cookie(response)
    assert cookie.value != first
    assert "httponly" in cookie.attributes
    assert cookie.attributes["path"] == "/auth"
    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert me.json()["id"] == str(user.id)


async def test_rotated_refresh_token_keeps_working_in_a_chain(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()
    token = refresh_token_of(await log_in(client, user))

    for _ in range(3):
        response = await refresh(client, token)
        assert response.status_code == 200, response.text
        token = refresh_token_of(response)


async def test_reusing_a_rotated_refresh_token_is_401_refresh_token_reused(
    client: httpx.AsyncClient, make_user
) -> None:
    user = await make_user()
    first = refresh_token_of(await log_in(client, user))
    await refresh(client, first)

    response = await refresh(client, first)

    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_reused"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_second_refresh_with_rotated_token_revokes_family(
    client: httpx.AsyncClient, make_user, db: AsyncSession
) -> None:
    user = await make_user()
    first = refresh_token_of(await log_in(client, user))
    newest = refresh_token_of(await refresh(client, first))

    await refresh(client, first)  # the reuse
    response = await refresh(client, newest)

    assert response.status_code == 401
    assert response.json()["code"] == "session_revoked"
    family = await db.scalar(select(RefreshTokenFamily).where(RefreshTokenFamily.user_id == user.id))
    assert family is not None
    assert family.revoked_at is not None
    assert family.revoked_reason == "reuse"


async def test_reuse_revokes_only_that_family_not_other_sessions(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()
    stolen = refresh_token_of(await log_in(client, user))
    other_device = refresh_token_of(await log_in(client, user))
    await refresh(client, stolen)
    await refresh(client, stolen)

    response = await refresh(client, other_device)

    assert response.status_code == 200, response.text


async def test_refresh_with_unknown_token_is_401(client: httpx.AsyncClient) -> None:
    response = await refresh(client, "this-token-was-never-issued-by-the-server")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_refresh_with_expired_token_is_401(client: httpx.AsyncClient, make_user, db: AsyncSession) -> None:
    user = await make_user()
    token = refresh_token_of(await log_in(client, user))
    await db.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == hash_refresh_token(token))
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await db.commit()

    response = await refresh(client, token)

    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_expired"


async def test_refresh_without_cookie_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/refresh")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_two_simultaneous_refreshes_of_one_token_give_one_200_and_one_reuse(
    committed_client: httpx.AsyncClient, make_committed_user, engine: AsyncEngine
) -> None:
    user = await make_committed_user()
    token = refresh_token_of(await log_in(committed_client, user))

    responses = await asyncio.gather(refresh(committed_client, token), refresh(committed_client, token))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 401)
    assert loser.json()["code"] == "refresh_token_reused"
    async with engine.connect() as conn:
        reason = await conn.scalar(
            select(RefreshTokenFamily.revoked_reason).where(RefreshTokenFamily.user_id == user.id)
        )
    assert reason == "reuse"
