"""GET and DELETE /auth/sessions: the caller's active refresh-token families."""

from __future__ import annotations

import uuid

import httpx

from tests.integration.accounts.credentials import log_in, refresh, refresh_token_of, with_refresh_cookie

SESSION_FIELDS = {"id", "created_at", "last_used_at", "user_agent", "current"}


async def test_sessions_lists_active_families_newest_first(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    user = await make_user()
    await log_in(client, user, user_agent="first-device")
    await log_in(client, user, user_agent="second-device")

    response = await client.get("/auth/sessions", headers=auth_headers(user))

    assert response.status_code == 200
    sessions = response.json()
    assert [s["user_agent"] for s in sessions] == ["second-device", "first-device"]
    for session in sessions:
        assert set(session) == SESSION_FIELDS
        assert uuid.UUID(session["id"])
        assert session["created_at"] <= session["last_used_at"]


async def test_sessions_marks_only_the_cookie_family_as_current(
    client: httpx.AsyncClient, make_user, auth_headers
) -> None:
    user = await make_user()
    first = refresh_token_of(await log_in(client, user, user_agent="first-device"))
    await log_in(client, user, user_agent="second-device")

    response = await client.get("/auth/sessions", headers=with_refresh_cookie(first, auth_headers(user)))

    assert {s["user_agent"]: s["current"] for s in response.json()} == {"first-device": True, "second-device": False}


async def test_sessions_current_follows_the_family_after_rotation(
    client: httpx.AsyncClient, make_user, auth_headers
) -> None:
    user = await make_user()
    rotated = refresh_token_of(await refresh(client, refresh_token_of(await log_in(client, user))))

    response = await client.get("/auth/sessions", headers=with_refresh_cookie(rotated, auth_headers(user)))

    assert [s["current"] for s in response.json()] == [True]


async def test_sessions_without_cookie_marks_none_current(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    user = await make_user()
    await log_in(client, user)

    response = await client.get("/auth/sessions", headers=auth_headers(user))

    assert [s["current"] for s in response.json()] == [False]


async def test_sessions_lists_only_the_callers_sessions(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    user, other = await make_user(), await make_user()
    await log_in(client, other)

    response = await client.get("/auth/sessions", headers=auth_headers(user))

    assert response.json() == []


async def test_sessions_requires_authentication(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/sessions")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_deleting_own_session_is_204_and_stops_its_refresh(
    client: httpx.AsyncClient, make_user, auth_headers
) -> None:
    user = await make_user()
    token = refresh_token_of(await log_in(client, user))
    [session] = (await client.get("/auth/sessions", headers=auth_headers(user))).json()

    response = await client.delete(f"/auth/sessions/{session['id']}", headers=auth_headers(user))

    assert response.status_code == 204
    refreshed = await refresh(client, token)
    assert refreshed.status_code == 401
    assert refreshed.json()["code"] == "session_revoked"


async def test_revoked_session_disappears_from_the_list(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    user = await make_user()
    await log_in(client, user, user_agent="keep")
    await log_in(client, user, user_agent="revoke")
    sessions = (await client.get("/auth/sessions", headers=auth_headers(user))).json()
    doomed = next(s for s in sessions if s["user_agent"] == "revoke")
    await client.delete(f"/auth/sessions/{doomed['id']}", headers=auth_headers(user))

    response = await client.get("/auth/sessions", headers=auth_headers(user))

    assert [s["user_agent"] for s in response.json()] == ["keep"]


async def test_logged_out_session_disappears_from_the_list(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    user = await make_user()
    token = refresh_token_of(await log_in(client, user))
    await client.post("/auth/logout", headers=with_refresh_cookie(token))

    response = await client.get("/auth/sessions", headers=auth_headers(user))

    assert response.json() == []


async def test_deleting_another_users_session_is_404_and_leaves_it_working(
    client: httpx.AsyncClient, make_user, auth_headers
) -> None:
    owner, intruder = await make_user(), await make_user()
    token = refresh_token_of(await log_in(client, owner))
    [session] = (await client.get("/auth/sessions", headers=auth_headers(owner))).json()

    response = await client.delete(f"/auth/sessions/{session['id']}", headers=auth_headers(intruder))

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert (await refresh(client, token)).status_code == 200


async def test_deleting_unknown_session_is_404(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    user = await make_user()

    response = await client.delete(f"/auth/sessions/{uuid.uuid4()}", headers=auth_headers(user))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
