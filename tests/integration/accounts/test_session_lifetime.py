"""A refresh-token family ends REFRESH_SESSION_MAX_AGE after its login however often it is rotated, and the worker
purges ended sessions and expired tokens (the table does not grow with every refresh)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
from saq.types import Context
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.security import hash_refresh_token
from app.domain.accounts.models import RefreshToken, RefreshTokenFamily
from app.domain.accounts.services import SessionService
from app.events.worker import purge_refresh_tokens
from tests.integration.accounts.credentials import log_in, refresh, refresh_set_cookie, refresh_token_of


async def _age_family(db: AsyncSession, token: str, age: timedelta) -> None:
    family_id = await db.scalar(
        select(RefreshToken.family_id).where(RefreshToken.token_hash == hash_refresh_token(token))
    )
    await db.execute(
        update(RefreshTokenFamily).where(RefreshTokenFamily.id == family_id).values(created_at=datetime.now(UTC) - age)
    )
    await db.commit()


async def test_a_rotated_family_past_its_max_age_is_refused(
    client: httpx.AsyncClient, make_user, db: AsyncSession, settings: Settings
) -> None:
    user = await make_user()
    token = refresh_token_of(await log_in(client, user))
    for _ in range(3):
        token = refresh_token_of(await refresh(client, token))
    await _age_family(db, token, timedelta(seconds=settings.refresh_session_max_age + 1))

    response = await refresh(client, token)

    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_expired"


async def test_a_rotated_token_never_outlives_its_session(
    client: httpx.AsyncClient, make_user, db: AsyncSession, settings: Settings
) -> None:
    user = await make_user()
    token = refresh_token_of(await log_in(client, user))
    await _age_family(db, token, timedelta(seconds=settings.refresh_session_max_age - 3600))

    response = await refresh(client, token)

    assert response.status_code == 200, response.text
    assert int(refresh_set_cookie(response).attributes["max-age"]) <= 3600
    expires_at = await db.scalar(
        select(RefreshToken.expires_at).where(RefreshToken.token_hash == hash_refresh_token(refresh_token_of(response)))
    )
    assert expires_at is not None
    assert expires_at <= datetime.now(UTC) + timedelta(seconds=3600)


def _upkeep_context(engine: AsyncEngine) -> Context:
    resources: Any = type("Resources", (), {"session_maker": async_sessionmaker(engine, expire_on_commit=False)})()
    return cast("Context", {"orders": resources})


async def test_purge_deletes_revoked_and_expired_sessions_and_expired_tokens_and_keeps_live_ones(
    make_committed_user, engine: AsyncEngine
) -> None:
    user = await make_committed_user()
    maker = async_sessionmaker(engine, expire_on_commit=False)
    ttl, max_age = timedelta(days=14), timedelta(days=30)
    async with maker() as session:
        sessions = SessionService(session=session)
        live = await sessions.start(user.id, None, ttl, max_age=max_age)
        rotated = await sessions.rotate(live.token, ttl, max_age=max_age)
        expired_in_live = await sessions.rotate(rotated.token, ttl, max_age=max_age)  # rotated.token: used, expiring
        revoked = await sessions.start(user.id, None, ttl, max_age=max_age)
        await sessions.end(revoked.token)
        expired = await sessions.start(user.id, None, ttl, max_age=max_age)
        past = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(
            update(RefreshTokenFamily).where(RefreshTokenFamily.id == expired.family_id).values(expires_at=past)
        )
        await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.family_id.in_([expired.family_id])
                | (RefreshToken.token_hash == hash_refresh_token(rotated.token))
            )
            .values(expires_at=past)
        )
        await session.commit()

    result = await purge_refresh_tokens(_upkeep_context(engine))

    async with maker() as session:
        families = set((await session.scalars(select(RefreshTokenFamily.id))).all())
        tokens = set((await session.scalars(select(RefreshToken.token_hash))).all())
    assert families == {live.family_id}
    assert tokens == {hash_refresh_token(live.token), hash_refresh_token(expired_in_live.token)}
    assert result == {"sessions": 2, "tokens": 1}
