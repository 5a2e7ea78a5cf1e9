"""GET /auth/me with every kind of bad credential: each is 401 with ``WWW-Authenticate: Bearer``.

Forged tokens are made with pyjwt directly, exactly as an attacker would make them.
"""

from __future__ import annotations

import base64
import json
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.services import SessionService
from tests.integration.accounts.credentials import log_in
from tests.integration.core.dedicated_app import running_app


def _claims(user_id: uuid.UUID | str, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        "type": "access",
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def _sign(claims: dict[str, Any], settings: Settings, *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or settings.jwt_secret, algorithm=algorithm)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _me(client: httpx.AsyncClient, authorization: str | None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return await client.get("/auth/me", headers=headers)


def _assert_rejected(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


async def test_me_with_valid_token_returns_the_user(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    user = await make_user(roles=("staff",))

    response = await client.get("/auth/me", headers=auth_headers(user))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(user.id)
    assert body["email"] == user.email
    assert body["roles"] == ["staff"]
    assert body["permissions"] == ["orders:manage", "products:manage"]
    assert "password_hash" not in body


async def test_me_without_authorization_header_is_401(client: httpx.AsyncClient) -> None:
    response = await _me(client, None)

    _assert_rejected(response)
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("scheme", ["Basic", "Token", "Digest"])
async def test_me_with_non_bearer_scheme_is_401(client: httpx.AsyncClient, make_user, settings, scheme) -> None:
    user = await make_user()

    _assert_rejected(await _me(client, f"{scheme} {_sign(_claims(user.id), settings)}"))


async def test_me_with_alg_none_token_is_401(client: httpx.AsyncClient, make_user) -> None:
    user = await make_user()
    token = jwt.encode(_claims(user.id), key=None, algorithm="none")

    response = await _me(client, f"Bearer {token}")

    _assert_rejected(response)
    assert response.json()["code"] == "invalid_token"


async def test_me_with_token_signed_by_another_key_is_401(client: httpx.AsyncClient, make_user, settings) -> None:
    user = await make_user()

    _assert_rejected(await _me(client, f"Bearer {_sign(_claims(user.id), settings, key='another-key-' + 'y' * 40)}"))


async def test_me_with_expired_token_is_401(client: httpx.AsyncClient, make_user, settings) -> None:
    user = await make_user()
    past = datetime.now(UTC) - timedelta(hours=1)
    token = _sign(_claims(user.id, iat=past, exp=past + timedelta(minutes=15)), settings)

    _assert_rejected(await _me(client, f"Bearer {token}"))


async def test_me_with_tampered_subject_keeping_signature_is_401(
    client: httpx.AsyncClient, make_user, settings
) -> None:
    user = await make_user()
    admin = await make_user(roles=("admin",))
    header, payload, signature = _sign(_claims(user.id), settings).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(admin.id)
    forged = ".".join([header, _b64(json.dumps(claims).encode()), signature])

    _assert_rejected(await _me(client, f"Bearer {forged}"))


@pytest.mark.parametrize("claim", ["sub", "exp"])
async def test_me_with_token_missing_required_claim_is_401(
    client: httpx.AsyncClient, make_user, settings, claim
) -> None:
    user = await make_user()

    _assert_rejected(await _me(client, f"Bearer {_sign(_claims(user.id, **{claim: None}), settings)}"))


@pytest.mark.parametrize("token_type", ["refresh", "id", ""])
async def test_me_with_token_type_not_access_is_401(client: httpx.AsyncClient, make_user, settings, token_type) -> None:
    user = await make_user()

    _assert_rejected(await _me(client, f"Bearer {_sign(_claims(user.id, type=token_type), settings)}"))


async def test_me_with_refresh_token_as_bearer_is_401(
    client: httpx.AsyncClient, make_user, db: AsyncSession, settings
) -> None:
    user = await make_user()
    issued = await SessionService(session=db).start(
        user.id,
        None,
        timedelta(seconds=settings.refresh_token_ttl),
        max_age=timedelta(seconds=settings.refresh_session_max_age),
    )

    _assert_rejected(await _me(client, f"Bearer {issued.token}"))


async def test_me_with_hs512_token_when_hs256_configured_is_401(client: httpx.AsyncClient, make_user, settings) -> None:
    assert settings.jwt_algorithm == "HS256"
    user = await make_user()
    with warnings.catch_warnings():  # the server's own (short for SHA-512) key, on purpose
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        token = _sign(_claims(user.id), settings, algorithm="HS512")

    _assert_rejected(await _me(client, f"Bearer {token}"))


async def test_me_with_non_uuid_subject_is_401(client: httpx.AsyncClient, settings) -> None:
    _assert_rejected(await _me(client, f"Bearer {_sign(_claims('admin'), settings)}"))


async def test_me_with_subject_of_nonexistent_user_is_401(client: httpx.AsyncClient, settings) -> None:
    _assert_rejected(await _me(client, f"Bearer {_sign(_claims(uuid.uuid4()), settings)}"))


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "Bearer"])
async def test_me_with_malformed_bearer_value_is_401(client: httpx.AsyncClient, garbage) -> None:
    _assert_rejected(await _me(client, f"Bearer {garbage}"))


async def test_issuer_and_audience_are_issued_and_required_when_configured(
    settings: Settings, make_committed_user
) -> None:
    user = await make_committed_user()
    without_audience = _sign(_claims(user.id), settings)

    async with running_app(settings, JWT_ISSUER="orders-service", JWT_AUDIENCE="orders-api") as client:
        issued = (await log_in(client, user)).json()["access_token"]
        accepted = await _me(client, f"Bearer {issued}")
        rejected = await _me(client, f"Bearer {without_audience}")

    claims = jwt.decode(
        issued, settings.jwt_secret, algorithms=["HS256"], audience="orders-api", issuer="orders-service"
    )
    assert (claims["iss"], claims["aud"]) == ("orders-service", "orders-api")
    assert accepted.status_code == 200
    _assert_rejected(rejected)
