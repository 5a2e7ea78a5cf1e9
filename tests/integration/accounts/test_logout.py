"""POST /auth/logout: ends the session, clears the cookie, and is harmless to repeat."""

from __future__ import annotations

import httpx

from tests.integration.accounts.credentials import (
    log_in,
    refresh,
    refresh_set_cookie,
    refresh_token_of,
    with_refresh_cookie,
)


async def test_logout_is_204_and_clears_the_cookie(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()
    token = refresh_token_of(await log_in(client, user))

    response = await client.post("/auth/logout", headers=with_refresh_cookie(token))

    assert response.status_code == 204
    assert response.content == b""
    cookie = refresh_set_cookie(response)
    assert cookie.value == ""
    assert cookie.attributes["max-age"] == "0"
    assert cookie.attributes["path"] == "/auth"


async def test_refresh_token_stops_working_after_logout(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()
    token = refresh_token_of(await log_in(client, user))
    await client.post("/auth/logout", headers=with_refresh_cookie(token))

    response = await refresh(client, token)

    assert response.status_code == 401
    assert response.json()["code"] == "session_revoked"


async def test_logout_again_with_the_same_cookie_is_harmless_204(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()
    token = refresh_token_of(await log_in(client, user))
    await client.post("/auth/logout", headers=with_refresh_cookie(token))

    response = await client.post("/auth/logout", headers=with_refresh_cookie(token))

    assert response.status_code == 204


async def test_logout_with_unknown_cookie_is_harmless_204(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/logout", headers=with_refresh_cookie("never-issued-token"))

    assert response.status_code == 204
    assert refresh_set_cookie(response).attributes["max-age"] == "0"


async def test_logout_ends_only_its_own_session(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()
    laptop = refresh_token_of(await log_in(client, user))
    phone = refresh_token_of(await log_in(client, user))
    await client.post("/auth/logout", headers=with_refresh_cookie(laptop))

    response = await refresh(client, phone)

    assert response.status_code == 200, response.text
