"""An email address is one plain ``local@domain`` address (contract §2): anything a mail relay could read otherwise
is refused with 422 naming the field, and nothing is stored."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User

NOT_PLAIN = [
    "(1)victim@example.com",
    "x<victim@evil.com>",
    "Victim <victim@evil.com>",
    "root,me@example.com",
    '"a b"@example.com',
    '"victim"@example.com',
    "a b@example.com",
    "me@localhost",
    "me@example.com.",
    "me@[127.0.0.1]",
    "a..b@example.com",
    ".me@example.com",
    "me@-example.com",
    "me@example.test",
    "me\r\nBcc: victim@evil.com@example.com",
    "me\x01@example.com",
    "me\x7f@example.com",
    "me@exa\tmple.com",
    "me@example.c\u0085om",
    f"{'a' * 65}@example.com",
    f"me@{'a' * 64}.com",
]


@pytest.mark.parametrize("email", NOT_PLAIN)
async def test_register_refuses_an_address_that_is_not_one_plain_address(
    client: httpx.AsyncClient, db: AsyncSession, email: str
) -> None:
    response = await client.post("/auth/register", json={"email": email, "password": "password-1"})

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    assert [error["field"] for error in response.json()["errors"]] == ["email"]
    assert await db.scalar(select(func.count()).select_from(User)) == 0


@pytest.mark.parametrize(
    "email", ["ada@example.com", "ada.lovelace+orders@mail.example.co.uk", "o'brien@example.ie", "x_y-z@sub.example.io"]
)
async def test_register_accepts_a_plain_address(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post("/auth/register", json={"email": email, "password": "password-1"})

    assert response.status_code == 201, response.text
    assert response.json()["email"] == email.lower()


@pytest.mark.parametrize("email", ["x<victim@evil.com>", "me@localhost", "root,me@example.com"])
async def test_login_answers_a_malformed_address_like_an_unknown_one(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post("/auth/login", json={"email": email, "password": "password-1"})

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def test_an_existing_account_with_an_address_from_before_the_rule_still_logs_in(
    client: httpx.AsyncClient, make_user
) -> None:
    user = await make_user(email="legacy@localhost")

    response = await client.post("/auth/login", json={"email": user.email, "password": "correct-horse-battery"})

    assert response.status_code == 200, response.text
