"""Password hashing, access tokens (JWT) and opaque refresh tokens.

Passwords use argon2id (argon2-cffi) with OWASP's recommended minimum, m=19 MiB, t=2, p=1: about 20 ms per hash on
a 2-core machine, so a login costs one hash while an offline attacker pays 19 MiB and 20 ms per guess. RFC 9106's
64 MiB/t=3/p=4 profile measured 115 ms here and, with 64 MiB per concurrent login, would dominate the process's
memory; the login rate limit bounds online guessing anyway. Hashing runs on a dedicated pool of one thread per CPU
(it would otherwise block the event loop for its whole duration), so a burst of logins queues instead of
multiplying memory. Stored hashes carry their parameters, so raising them later re-hashes on next login.

Access tokens are short-lived HS* JWTs (pyjwt). Refresh tokens are opaque random strings; only their SHA-256 is
stored, so a database leak does not leak usable sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import os
import secrets
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.config import Settings

__all__ = (
    "AccessTokenClaims",
    "InvalidTokenError",
    "PasswordHashing",
    "TokenCodec",
    "hash_refresh_token",
    "new_one_time_token",
    "new_refresh_token",
)


def _return_large_blocks_to_the_os() -> None:
    """Make glibc serve big allocations (argon2's 19 MiB work area) with mmap, always.

    By default glibc raises its mmap threshold after the first large block is freed, so every later hash lands in a
    per-thread heap arena that is never given back: measured here, 40 logins left a process 115 MB larger. With a
    fixed threshold each work area is unmapped when the hash ends. No-op where glibc is not the allocator.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 1 << 20)


_M_MMAP_THRESHOLD: Final = -3


class PasswordHashing:
    """argon2id hashing off the event loop, on a small dedicated thread pool (bounded CPU and memory)."""

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost_kib: int = 19_456,
        parallelism: int = 1,
        max_concurrent: int = 0,
    ) -> None:
        _return_large_blocks_to_the_os()
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism)
        workers = max_concurrent or os.cpu_count() or 2
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        # Verifying against this when the account does not exist makes "unknown email" cost the same as
        # "wrong password", so response timing does not reveal which emails are registered.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> tuple[bool, str | None]:
        """Check ``password``; return ``(ok, new_hash)`` where ``new_hash`` is set when parameters changed."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> tuple[bool, str | None]:
        if password_hash is None:
            with contextlib.suppress(VerificationError):
                self._hasher.verify(self._dummy_hash, password)
            return False, None
        try:
            self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, None
        if self._hasher.check_needs_rehash(password_hash):
            return True, self._hasher.hash(password)
        return True, None


#: Access tokens remembered as verified (about 300 bytes each).
VERIFIED_CACHE_SIZE: Final = 10_000


class InvalidTokenError(Exception):
    """The access token is missing a claim, expired, forged, or not an access token."""


class AccessTokenClaims:
    """The verified claims of an access token."""

    __slots__ = ("expires_at", "issued_at", "token_id", "user_id")

    def __init__(self, user_id: uuid.UUID, token_id: str, expires_at: datetime, issued_at: datetime) -> None:
        self.user_id = user_id
        self.token_id = token_id
        self.expires_at = expires_at
        #: Compared with the user's ``password_changed_at``: tokens issued before a password change are refused.
        self.issued_at = issued_at


class TokenCodec:
    """Issues and verifies access tokens with one pinned algorithm."""

    _REQUIRED: Final = ("exp", "iat", "sub", "jti", "type")

    def __init__(
        self,
        *,
        secret: str,
        algorithm: str,
        ttl: timedelta,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        self._secret = secret
        self._algorithms = [algorithm]
        self._algorithm = algorithm
        self.ttl = ttl
        self._issuer = issuer
        self._audience = audience
        self._options: dict[str, Any] = {
            "require": list(self._REQUIRED),
            "verify_aud": audience is not None,
        }
        self._verified: OrderedDict[str, AccessTokenClaims] = OrderedDict()

    @classmethod
    def for_settings(cls, settings: Settings) -> TokenCodec:
        return cls(
            secret=settings.jwt_secret,
            algorithm=settings.jwt_algorithm,
            ttl=timedelta(seconds=settings.access_token_ttl),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )

    def issue(self, user_id: uuid.UUID, *, now: datetime | None = None) -> str:
        issued_at = round((now or datetime.now(UTC)).timestamp(), 6)
        claims: dict[str, Any] = {
            "sub": str(user_id),
            # NumericDates with microseconds (RFC 7519 allows fractions): a token issued in the same second as a
            # password change, but after it, must not be taken for one issued before it. exp - iat is exactly the TTL.
            "iat": issued_at,
            "exp": issued_at + self.ttl.total_seconds(),
            "jti": uuid.uuid4().hex,
            "type": "access",
        }
        if self._issuer:
            claims["iss"] = self._issuer
        if self._audience:
            claims["aud"] = self._audience
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

    def verify(self, token: str) -> AccessTokenClaims:
        """Decode ``token``; the algorithm list is pinned, so ``alg: none`` and algorithm confusion fail here.

        A token that verified before is remembered (a bounded LRU keyed by the exact token string), so a client's
        every request does not pay the signature check again; its expiry is still checked on every use. Only
        successfully verified tokens are cached, so a forged or altered token is always checked in full.
        """
        claims_seen = self._verified.get(token)
        if claims_seen is not None:
            if claims_seen.expires_at <= datetime.now(UTC):
                del self._verified[token]
                raise InvalidTokenError("Signature has expired")
            self._verified.move_to_end(token)
            return claims_seen
        verified = self._verify(token)
        self._verified[token] = verified
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return verified

    def _verify(self, token: str) -> AccessTokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options=self._options,  # type: ignore[arg-type]
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from None
        if claims.get("type") != "access":
            raise InvalidTokenError("not an access token")
        try:
            user_id = uuid.UUID(claims["sub"])
        except (TypeError, ValueError, AttributeError):
            raise InvalidTokenError("malformed subject") from None
        return AccessTokenClaims(
            user_id,
            str(claims["jti"]),
            datetime.fromtimestamp(claims["exp"], UTC),
            datetime.fromtimestamp(claims["iat"], UTC),
        )


def new_refresh_token() -> str:
    """A fresh opaque refresh token (256 bits of randomness)."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """The stored form of a refresh token. SHA-256 suffices: the input is random, not a password."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_one_time_token() -> str:
    """A password-reset or email-verification token: 32 random bytes (256 bits), URL-safe for the email's link.

    Stored like refresh tokens, as ``hash_refresh_token(token)`` only.
    """
    return secrets.token_urlsafe(32)
