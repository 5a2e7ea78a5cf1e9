"""Unsafe configurations stop the start with a message naming the variable, in a process as an operator runs it."""

from __future__ import annotations

import pytest

from app.config import Settings
from tests.support import run_litestar

CREATE_USER = ("users", "create", "--email", "never@example.com", "--password", "never-created")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JWT_SECRET": ""}, "JWT_SECRET: is required when DATABASE_URL is set"),
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS: must list origins"),
    ],
    ids=["database-without-jwt-secret", "cors-wildcard"],
)
async def test_unsafe_configuration_stops_the_start(settings: Settings, env: dict[str, str], message: str) -> None:
    result = await run_litestar(settings, *CREATE_USER, LITESTAR_APP="app.main:app", **env)

    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "never@example.com (" not in result.stdout
