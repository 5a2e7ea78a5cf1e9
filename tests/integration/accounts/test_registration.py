"""POST /auth/register: the User it returns, and every way a registration is refused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.domain.accounts.models import User

USER_FIELDS = {"id", "email", "email_verified", "full_name", "is_active", "roles", "permissions", "created_at"}


def _email(prefix: str = "ada") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}@example.com"


async def test_register_returns_201_customer_without_password_fields(client: httpx.AsyncClient) -> None:
    email = _email()
    response = await client.post(
        "/auth/register",
        json={"email": email, "password": "s3cret-enough", "full_name": "Ada Lovelace"},
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == USER_FIELDS
    assert uuid.UUID(body["id"])
    assert body["email"] == email
    assert body["full_name"] == "Ada Lovelace"
    assert body["is_active"] is True
    assert body["email_verified"] is False
    assert body["roles"] == ["customer"]
    assert body["permissions"] == []
    assert body["created_at"].endswith(("Z", "+00:00"))
    assert "s3cret-enough" not in response.text
    assert "argon2" not in response.text


async def test_register_stores_email_lower_cased(client: httpx.AsyncClient, db: AsyncSession) -> None:
    local = f"Ada.Lovelace.{uuid.uuid4().hex[:6]}"
    response = await client.post("/auth/register", json={"email": f"{local}@Example.COM", "password": "password-1"})

    assert response.status_code == 201, response.text
    assert response.json()["email"] == f"{local.lower()}@example.com"
    stored = await db.scalar(select(User.email).where(User.id == uuid.UUID(response.json()["id"])))
    assert stored == f"{local.lower()}@example.com"


async def test_register_with_taken_email_is_409_email_taken(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()

    response = await client.post("/auth/register", json={"email": user.email, "password": "password-1"})

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "email_taken"


async def test_register_with_email_differing_only_in_case_is_409_email_taken(
    client: httpx.AsyncClient, make_user
) -> None:
    user = await make_user()

    response = await client.post("/auth/register", json={"email": user.email.upper(), "password": "password-1"})

    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


async def test_register_with_7_char_password_is_422_naming_password(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/register", json={"email": _email(), "password": "x" * 7})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_failed"
    assert [error["field"] for error in body["errors"]] == ["password"]
    assert body["errors"][0]["message"]


async def test_register_with_129_char_password_is_422_naming_password(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/register", json={"email": _email(), "password": "x" * 129})

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["password"]


async def test_register_accepts_8_and_128_char_passwords(client: httpx.AsyncClient) -> None:
    for length in (8, 128):
        response = await client.post("/auth/register", json={"email": _email(), "password": "x" * length})
        assert response.status_code == 201, (length, response.text)


async def test_register_with_unknown_field_is_422_and_creates_nothing(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    email = _email()
    response = await client.post(
        "/auth/register",
        json={"email": email, "password": "password-1", "is_admin": True},
    )

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_failed"
    assert "is_admin" in body["errors"][0]["message"]
    assert await db.scalar(select(func.count()).select_from(User).where(User.email == email)) == 0


async def test_register_with_malformed_json_is_400_malformed_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        content=b'{"email": "a@example.com", "password":',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "malformed_json"


async def test_register_with_text_plain_body_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        content=b'{"email": "plain@example.com", "password": "password-1"}',
        headers={"Content-Type": "text/plain"},
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unsupported_media_type"


async def test_register_with_body_over_1_mib_is_413_problem(client: httpx.AsyncClient) -> None:
    padding = "x" * (1024 * 1024)
    response = await client.post("/auth/register", json={"email": _email(), "password": "password-1", "pad": padding})

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 413
    assert body["code"] == "payload_too_large"


async def test_register_with_chunked_body_over_1_mib_is_413_problem(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "chunked@example.com", "password": "password-1", "pad": "'
        for _ in range(17):
            yield b"x" * 65_536
        yield b'"}'

    response = await client.post("/auth/register", content=chunks(), headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_concurrent_registrations_of_one_email_give_one_201_and_one_409(
    committed_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    email = _email("race")
    payloads = [{"email": email, "password": "password-1"}, {"email": email.upper(), "password": "password-2"}]

    responses = await asyncio.gather(*(committed_client.post("/auth/register", json=p) for p in payloads))

    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.json()["code"] == "email_taken"
    async with engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(User).where(User.email == email))
    assert count == 1
