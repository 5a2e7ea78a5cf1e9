"""The private attributes of libraries the app relies on still exist, in the form the app uses them.

Each is used only where the library has no public way (see the comment at each use); the versions are pinned in
``pyproject.toml``, and an upgrade that renames one fails here, loudly, instead of silently disabling a behaviour.
"""

from __future__ import annotations

import inspect

import anyio
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar_saq import base as saq_base
from redis.asyncio import Redis


def test_litestar_cli_group_is_where_the_cli_imports_it() -> None:
    from litestar.cli._utils import LitestarGroup

    assert "app" in inspect.signature(LitestarGroup.__init__).parameters or LitestarGroup.group_class


async def test_rate_limit_middleware_keeps_its_lock_in_lock() -> None:
    async def app(scope: object, receive: object, send: object) -> None: ...

    middleware = RateLimitMiddleware(app, RateLimitConfig(rate_limit=("minute", 1)))

    assert isinstance(middleware._lock, anyio.Lock)
    assert "self._lock" in inspect.getsource(RateLimitMiddleware)


async def test_redis_channels_backend_keeps_pub_sub_and_has_subscribed() -> None:
    backend = RedisChannelsPubSubBackend(redis=Redis())

    assert callable(backend._has_subscribed.set)
    assert callable(backend._has_subscribed.clear)
    assert hasattr(backend._pub_sub, "channels")
    await backend._redis.aclose()


def test_litestar_saq_worker_has_the_heartbeat_switch_and_the_start_task() -> None:
    source = inspect.getsource(saq_base.Worker)

    assert "if self._enable_heartbeat_manager:" in source
    assert "self._saq_asyncio_tasks = loop.create_task(self.start())" in source


def test_saq_worker_stop_reads_its_grace_from_the_attribute_prompt_stop_sets() -> None:
    from saq import Worker

    assert "self._shutdown_grace_period_s" in inspect.getsource(Worker.stop)
    assert "_shutdown_grace_period_s" in inspect.getsource(Worker.__init__)


def test_asyncpg_uuid_is_a_uuid_built_from_bytes() -> None:
    # The seed builds its ids as asyncpg's own UUID (made and COPY-encoded in C; ``uuid.UUID`` is encoded through
    # ``.bytes``): it must stay a ``uuid.UUID`` equal to, and hashing like, the standard one.
    import uuid

    from asyncpg.pgproto import pgproto

    value = uuid.uuid4()
    made = pgproto.UUID(value.bytes)

    assert isinstance(made, uuid.UUID)
    assert made == value
    assert hash(made) == hash(value)
