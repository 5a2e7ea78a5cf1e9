"""Socket leases in Redis: at most ``WS_MAX_PER_USER`` live WebSockets per user, counted across every API process.

Each open socket holds a lease: a member of the sorted set ``live:sockets:<user id>`` whose score is the moment it
lapses, in Redis server time (so hosts whose clocks disagree still agree on what has lapsed). Taking a lease drops
the lapsed ones and adds one only while fewer than the cap remain, in one Lua script: atomic, so a burst of
handshakes spread over many processes admits exactly the cap, not "about" it. Every process renews the leases of
the sockets it holds on each tick of its live-connections watchdog (``LIVE_CHECK_INTERVAL``, 5 s), for
``3 * interval + 5 s`` (20 s by default): a lease survives two missed renewals and a stalled event loop, and a
process killed with kill -9, which renews nothing any more, stops counting within those 20 s. The key expires
with its newest lease, so users who leave leave nothing behind.

Redis unreachable: the handshake does not fail, it falls back to a per-process cap (see
:meth:`app.events.live.LiveConnections.admit`). The live feed already rides out Redis outages (subscriptions come
back and catch up from the database); refusing every socket while Redis is down would turn a Redis blip into an
outage of the whole feed and a reconnect storm after it, to guard against one user holding a few sockets too many.
With N processes the worst case during an outage is N times the cap for that user; the first renewal after Redis is
back re-registers every socket still open, and counts are exact again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.logging import get_logger

__all__ = ("REDIS_UNAVAILABLE", "SocketLeases", "lease_ttl")

logger = get_logger("app.live")

#: The errors that mean "Redis is not answering, or not as it should" (unreachable, timed out, a read-only replica
#: during a failover, out of memory): the cap falls back to the per-process count rather than failing the handshake.
REDIS_UNAVAILABLE: Final = (RedisError, OSError, TimeoutError)
#: How long a handshake waits for Redis before it falls back to the per-process cap.
ACQUIRE_TIMEOUT_S: Final = 2.0
#: Extra life of a lease beyond three renewal intervals (event-loop stalls, a slow Redis round trip).
LEASE_SLACK_S: Final = 5.0

_NOW: Final = "local now = redis.call('TIME') local t = tonumber(now[1]) + tonumber(now[2]) / 1000000 "
# KEYS[1] the user's set; ARGV: cap, lease seconds, lease id. 1 = taken, 0 = the user is at the cap.
_ACQUIRE: Final = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], t + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""
)
# KEYS: users' sets; ARGV: lease seconds, how many lease ids each key has, then those ids key by key. A lease that
# lapsed or was lost (Redis restarted) is added again: its socket is open, so it counts.
_RENEW: Final = (
    _NOW
    + """
local ttl = tonumber(ARGV[1])
local at = #KEYS + 2
for k = 1, #KEYS do
  local last = at + tonumber(ARGV[k + 1]) - 1
  for i = at, last do redis.call('ZADD', KEYS[k], t + ttl, ARGV[i]) end
  at = last + 1
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', t)
  redis.call('EXPIRE', KEYS[k], math.ceil(ttl))
end
return #KEYS
"""
)
#: Users per renewal script: a script blocks Redis while it runs, so many users are renewed in slices (3 commands
#: each). Several keys in one script assume a single Redis, not a cluster (as the queue and pub/sub do already).
RENEW_CHUNK: Final = 500


def lease_ttl(check_interval: float) -> float:
    """Seconds a lease lives without renewal: three watchdog intervals plus slack (20 s with the 5 s default)."""
    return 3 * check_interval + LEASE_SLACK_S


class SocketLeases:
    """The Redis side of the per-user socket cap: take, renew and give back leases."""

    def __init__(self, redis: Redis, *, limit: int, ttl: float, acquire_timeout: float = ACQUIRE_TIMEOUT_S) -> None:
        self.limit = limit
        self._redis = redis
        self._ttl = ttl
        self._acquire_timeout = acquire_timeout
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._renewing = False
        self._released_while_renewing: list[tuple[uuid.UUID, str]] = []

    @staticmethod
    def key(user_id: uuid.UUID) -> str:
        return f"live:sockets:{user_id}"

    async def acquire(self, user_id: uuid.UUID, lease_id: str) -> bool:
        """Take a lease if the user holds fewer than ``limit``; raises one of ``REDIS_UNAVAILABLE`` if Redis is not
        answering within ``acquire_timeout`` (the handshake must not hang on it)."""
        async with asyncio.timeout(self._acquire_timeout):
            taken = await self._acquire(keys=[self.key(user_id)], args=[self.limit, self._ttl, lease_id])
        return bool(taken)

    async def release(self, user_id: uuid.UUID, lease_id: str) -> None:
        """Give a lease back; best effort: if Redis is not answering, the lease lapses (it is not renewed any more)."""
        if self._renewing:
            # A renewal already under way may have read this lease and would add it back: remove it after that too.
            self._released_while_renewing.append((user_id, lease_id))
        try:
            async with asyncio.timeout(self._acquire_timeout):
                await self._redis.zrem(self.key(user_id), lease_id)
        except REDIS_UNAVAILABLE as exc:
            logger.warning("socket_lease_release_failed", error=type(exc).__name__)

    async def renew(self, held: Mapping[uuid.UUID, Iterable[str]]) -> None:
        """Renew the leases of the sockets this process holds: one round trip, one script per 500 users."""
        if not held:
            return
        users = [(self.key(user_id), list(lease_ids)) for user_id, lease_ids in held.items()]
        self._renewing = True
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for start in range(0, len(users), RENEW_CHUNK):
                    chunk = users[start : start + RENEW_CHUNK]
                    counts = [len(ids) for _, ids in chunk]
                    lease_ids = [lease_id for _, ids in chunk for lease_id in ids]
                    await self._renew(
                        keys=[key for key, _ in chunk], args=[self._ttl, *counts, *lease_ids], client=pipe
                    )
                await pipe.execute()
        finally:
            self._renewing = False
            released, self._released_while_renewing = self._released_while_renewing, []
        if released:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id, lease_id in released:
                    pipe.zrem(self.key(user_id), lease_id)
                await pipe.execute()
