"""Logging in over HTTP and handling the refresh cookie explicitly (the tests never rely on httpx's cookie jar)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from app.domain.accounts.models import User
from app.testing.factories import DEFAULT_PASSWORD

REFRESH_COOKIE = "refresh_token"


@dataclass(frozen=True)
class SetCookie:
    """One parsed ``Set-Cookie`` header; ``attributes`` has lower-cased names, flags map to ``""``."""

    name: str
    value: str
    attributes: dict[str, str]


def refresh_set_cookie(response: httpx.Response) -> SetCookie:
    """The ``refresh_token`` cookie the response sets (fails the test if there is none)."""
    for header in response.headers.get_list("set-cookie"):
        pair, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = pair.partition("=")
        if name == REFRESH_COOKIE:
            parsed = {}
            for attribute in attributes:
                key, _, attribute_value = attribute.partition("=")
                parsed[key.strip().lower()] = attribute_value.strip()
            return SetCookie(name=name, value=value.strip('"'), attributes=parsed)
    raise AssertionError(f"no {REFRESH_COOKIE} cookie in {response.headers.get_list('set-cookie')}")


def refresh_token_of(response: httpx.Response) -> str:
    return refresh_set_cookie(response).value


def with_refresh_cookie(token: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """Request headers that present ``token`` as the refresh cookie."""
    return {**(headers or {}), "Cookie": f"{REFRESH_COOKIE}={token}"}


async def log_in(
    client: httpx.AsyncClient,
    user: User,
    *,
    password: str = DEFAULT_PASSWORD,
    user_agent: str = "pytest-client/1.0",
) -> httpx.Response:
    """POST /auth/login as ``user``; the cookie jar is emptied so each test sends the refresh cookie it means to."""
    response = await client.post(
        "/auth/login",
        json={"email": user.email, "password": password},
        headers={"User-Agent": user_agent},
    )
    client.cookies.clear()
    return response


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    response = await client.post("/auth/refresh", headers=with_refresh_cookie(token))
    client.cookies.clear()
    return response
