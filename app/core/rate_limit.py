"""Rate limiting of the credential endpoints with Litestar's limiter over a Redis store.

The counters live in Redis so every API process shares them. If Redis is unreachable the limiter *fails open*
(logs a warning and lets the request through): losing the brute-force brake for the seconds a Redis restart takes is
better than refusing every login. Litestar serialises its read-modify-write per process only, so across processes
the limit is approximate under a burst (a few requests over, never systematically).
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.stores.redis import RedisStore
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.config import RateLimit

__all__ = ("AUTH_RATE_LIMIT_STORE", "FailOpenRedisStore", "auth_rate_limit")

AUTH_RATE_LIMIT_STORE = "auth_rate_limit"

logger = structlog.get_logger("app.rate_limit")


class FailOpenRedisStore(RedisStore):
    """A RedisStore whose reads and writes degrade to "nothing stored" while Redis is unreachable."""

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        try:
            return await super().get(key, renew_for)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            logger.warning("rate_limit_store_unavailable", op="get")
            return None

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        try:
            await super().set(key, value, expires_in)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            logger.warning("rate_limit_store_unavailable", op="set")


def auth_rate_limit(limit: RateLimit) -> RateLimitConfig:
    """The limiter for login, token and register: ``limit`` per client IP, shared by the three routes."""
    return RateLimitConfig(rate_limit=(limit.unit, limit.count), store=AUTH_RATE_LIMIT_STORE)
