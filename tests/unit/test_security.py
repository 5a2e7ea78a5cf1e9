"""Passwords (argon2id) and access tokens (JWT), without a server."""

from __future__ import annotations

import uuid
import warnings
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from argon2 import PasswordHasher
from jwt.warnings import InsecureKeyLengthWarning

from app.core.security import (
    InvalidTokenError,
    PasswordHashing,
    TokenCodec,
    hash_refresh_token,
    new_refresh_token,
)

SECRET = "unit-test-secret-" + "k" * 32


@pytest.fixture(scope="module")
def passwords() -> PasswordHashing:
    return PasswordHashing()


def _codec(**overrides: object) -> TokenCodec:
    options: dict[str, object] = {"secret": SECRET, "algorithm": "HS256", "ttl": timedelta(minutes=15)}
    options.update(overrides)
    return TokenCodec(**options)  # type: ignore[arg-type]


async def test_hash_is_argon2id_and_verifies(passwords: PasswordHashing) -> None:
    hashed = await passwords.hash("correct horse")

    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert await passwords.verify(hashed, "correct horse") == (True, None)


async def test_wrong_password_does_not_verify(passwords: PasswordHashing) -> None:
    hashed = await passwords.hash("correct horse")

    assert await passwords.verify(hashed, "wrong horse") == (False, None)


async def test_same_password_hashes_differently(passwords: PasswordHashing) -> None:
    assert await passwords.hash("same") != await passwords.hash("same")


async def test_missing_hash_never_verifies(passwords: PasswordHashing) -> None:
    assert await passwords.verify(None, "anything") == (False, None)


async def test_garbage_hash_never_verifies(passwords: PasswordHashing) -> None:
    assert await passwords.verify("not-a-hash", "anything") == (False, None)


async def test_hash_with_old_parameters_verifies_and_asks_for_rehash(passwords: PasswordHashing) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8_192, parallelism=1).hash("correct horse")

    ok, new_hash = await passwords.verify(weak, "correct horse")

    assert ok is True
    assert new_hash is not None
    assert new_hash != weak
    assert await passwords.verify(new_hash, "correct horse") == (True, None)


async def test_rehash_is_not_offered_for_a_wrong_password(passwords: PasswordHashing) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8_192, parallelism=1).hash("correct horse")

    assert await passwords.verify(weak, "wrong") == (False, None)


def test_issued_token_verifies_with_its_claims() -> None:
    user_id = uuid.uuid4()
    now = datetime.now(UTC).replace(microsecond=0)

    claims = _codec().verify(_codec().issue(user_id, now=now))

    assert claims.user_id == user_id
    assert claims.expires_at == now + timedelta(minutes=15)
    assert claims.token_id


def test_issued_token_carries_the_contract_claims() -> None:
    user_id = uuid.uuid4()

    payload = jwt.decode(_codec().issue(user_id), SECRET, algorithms=["HS256"])

    assert set(payload) == {"sub", "exp", "iat", "jti", "type"}
    assert payload["sub"] == str(user_id)
    assert payload["type"] == "access"


def test_each_token_has_a_unique_jti() -> None:
    user_id = uuid.uuid4()
    codec = _codec()

    assert codec.verify(codec.issue(user_id)).token_id != codec.verify(codec.issue(user_id)).token_id


def test_expired_token_is_invalid() -> None:
    token = _codec().issue(uuid.uuid4(), now=datetime.now(UTC) - timedelta(hours=1))

    with pytest.raises(InvalidTokenError):
        _codec().verify(token)


def test_token_from_another_secret_is_invalid() -> None:
    token = _codec(secret="another-secret-" + "z" * 32).issue(uuid.uuid4())

    with pytest.raises(InvalidTokenError):
        _codec().verify(token)


def test_token_with_another_algorithm_is_invalid() -> None:
    with warnings.catch_warnings():  # the same (short for SHA-512) key, on purpose
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        token = _codec(algorithm="HS512").issue(uuid.uuid4())

    with pytest.raises(InvalidTokenError):
        _codec().verify(token)


def test_issuer_and_audience_are_issued_and_enforced() -> None:
    codec = _codec(issuer="orders", audience="orders-api")
    token = codec.issue(uuid.uuid4())

    assert jwt.decode(token, SECRET, algorithms=["HS256"], audience="orders-api")["iss"] == "orders"
    codec.verify(token)
    for other in (_codec(issuer="someone-else", audience="orders-api"), _codec(issuer="orders", audience="other")):
        with pytest.raises(InvalidTokenError):
            other.verify(token)


def test_token_without_audience_is_invalid_when_audience_configured() -> None:
    token = _codec().issue(uuid.uuid4())

    with pytest.raises(InvalidTokenError):
        _codec(audience="orders-api").verify(token)


def test_refresh_tokens_are_random_and_stored_only_as_sha256() -> None:
    first, second = new_refresh_token(), new_refresh_token()

    assert first != second
    assert len(first) >= 43  # 256 bits, url-safe base64
    assert len(hash_refresh_token(first)) == 64
    assert hash_refresh_token(first) == hash_refresh_token(first)
    assert first not in hash_refresh_token(first)
