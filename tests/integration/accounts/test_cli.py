"""``litestar users create``: bootstraps an account with a role, from the command line."""

from __future__ import annotations

import httpx

from app.config import Settings
from tests.support import CommandResult, run_litestar


async def _users_create(settings: Settings, *args: str) -> CommandResult:
    return await run_litestar(settings, "users", "create", *args, LITESTAR_APP="app.main:app")


async def test_users_create_makes_an_admin_who_can_log_in(
    settings: Settings, committed_client: httpx.AsyncClient
) -> None:
    arguments = ("--email", "Root@Example.com", "--password", "root-password-1", "--role", "admin")
    result = await _users_create(settings, *arguments)

    assert result.returncode == 0, result.stderr
    login = await committed_client.post(
        "/auth/login", json={"email": "root@example.com", "password": "root-password-1"}
    )
    assert login.status_code == 200
    me = await committed_client.get("/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.json()["roles"] == ["admin"]
    assert "users:manage" in me.json()["permissions"]


async def test_users_create_rejects_a_short_password(settings: Settings, committed_client: httpx.AsyncClient) -> None:
    result = await _users_create(settings, "--email", "x@example.com", "--password", "short", "--role", "staff")

    assert result.returncode != 0
    assert "8 to 128" in result.stderr + result.stdout


async def test_users_create_refuses_an_address_that_is_not_one_plain_address(
    settings: Settings, committed_client: httpx.AsyncClient
) -> None:
    result = await _users_create(settings, "--email", "Root <root@example.com>", "--password", "root-password-1")

    assert result.returncode != 0
    assert "--email" in result.stderr + result.stdout
    login = await committed_client.post(
        "/auth/login", json={"email": "root@example.com", "password": "root-password-1"}
    )
    assert login.status_code == 401
