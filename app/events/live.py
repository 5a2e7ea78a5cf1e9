"""Live order events over WebSockets: ``/ws/orders`` (the caller's) and ``/ws/admin/orders`` (everyone's).

Delivery path: the outbox dispatcher publishes each event to Redis (a per-user channel and an all-orders channel, see
``EventChannels``); every API process subscribes through Litestar's channels plugin and forwards to its sockets, so
a change made through one process reaches listeners on any other.

No gaps, no duplicates: a connection subscribes *before* it reads missed events from the database (``?since=``),
then forwards live events only if their id is above the last one it sent. Event ids are assigned in publish order
(see ``app.events.outbox``), so "above the last sent" is exactly "not yet seen". When the Redis subscription is
re-established after an outage, every subscriber gets an internal resync marker and catches up from the database,
so events published while this process was disconnected are not lost either.

Access ends on time: the token's expiry closes the socket (1008), and a per-process watchdog closes the sockets of
users who were deactivated, and those opened with a token issued before the user's last password change or reset,
within ``LIVE_CHECK_INTERVAL`` seconds (5 by default), on every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import msgspec
from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import QueryParameter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.auth import Principal, authenticate
from app.core.errors import DomainError
from app.core.logging import get_logger
from app.core.security import TokenCodec
from app.domain.accounts.models import User
from app.domain.accounts.services import UserService
from app.domain.orders.models import OrderEvent
from app.events.outbox import EventChannels

__all__ = (
    "LiveConnections",
    "ResilientRedisPubSubBackend",
    "admin_order_feed",
    "order_feed",
)

logger = get_logger("app.live")

POLICY_VIOLATION: Final = 1008
WATCHDOG_INTERVAL: Final = 5.0
REPLAY_LIMIT: Final = 1000
RESYNC: Final = b'{"type":"_resync"}'
PONG: Final = '{"type":"pong"}'
_REDIS_OUTAGE: Final = (RedisConnectionError, RedisTimeoutError, OSError)
ORDERS_MANAGE: Final = "orders:manage"


class ResilientRedisPubSubBackend(RedisChannelsPubSubBackend):
    """Litestar's Redis pub/sub backend, made to ride out Redis outages.

    The stock backend lets a connection error end ``stream_events`` (which silently stops all WebSocket delivery in
    the process for good) and lets ``subscribe``/``unsubscribe`` fail a socket that connects or leaves while Redis
    is down. Here a failed subscribe is remembered, the stream waits and re-subscribes, and once it is back every
    subscribed channel gets a resync marker so its sockets catch up from the database.
    """

    _needs_resubscribe = False

    async def subscribe(self, channels: Iterable[str]) -> None:
        channels = list(channels)
        try:
            await super().subscribe(channels)
        except _REDIS_OUTAGE as exc:
            logger.warning("pubsub_subscribe_deferred", error=type(exc).__name__)
            self._pub_sub.channels.update(dict.fromkeys(map(self._key, channels)))
            self._needs_resubscribe = True
            self._has_subscribed.set()

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        channels = list(channels)
        try:
            await super().unsubscribe(channels)
        except _REDIS_OUTAGE:
            for channel in channels:
                self._pub_sub.channels.pop(self._key(channel), None)
            if not self._pub_sub.channels:
                self._has_subscribed.clear()

    async def stream_events(self) -> AsyncGenerator[tuple[str, Any], None]:
        failures = 0
        while True:
            try:
                if failures or self._needs_resubscribe:
                    channels = self._subscribed_channels()
                    if channels:
                        await self._pub_sub.subscribe(*channels)
                    logger.info("pubsub_resubscribed", channels=len(channels))
                    failures, self._needs_resubscribe = 0, False
                    for channel in channels:
                        yield channel, RESYNC
                async for channel, data in super().stream_events():
                    yield channel, data
            except (*_REDIS_OUTAGE, RuntimeError) as exc:  # RuntimeError: no connection yet (deferred subscribe)
                failures += 1
                logger.warning("pubsub_disconnected", error=type(exc).__name__, attempt=failures)
                await asyncio.sleep(min(0.1 * 2**failures, 2.0))

    def _key(self, channel: str) -> Any:
        """The form redis-py keys ``PubSub.channels`` by (bytes unless responses are decoded)."""
        encoder = self._pub_sub.encoder
        return encoder.decode(encoder.encode(channel))

    def _subscribed_channels(self) -> list[str]:
        return [c.decode() if isinstance(c, bytes) else c for c in self._pub_sub.channels]


class LiveConnections:
    """The sockets this process holds, by user, and the watchdog that closes those of deactivated users."""

    def __init__(
        self, session_maker: Callable[[], async_sessionmaker[AsyncSession]], *, interval: float = WATCHDOG_INTERVAL
    ) -> None:
        self._session_maker = session_maker
        self._interval = interval
        self._closers: dict[uuid.UUID, set[Callable[[], Awaitable[None]]]] = defaultdict(set)
        #: When each socket's access token was issued (a password change ends the sockets opened before it).
        self._issued: dict[Callable[[], Awaitable[None]], datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def add(
        self, user_id: uuid.UUID, close: Callable[[], Awaitable[None]], *, issued_at: datetime | None = None
    ) -> None:
        self._closers[user_id].add(close)
        if issued_at is not None:
            self._issued[close] = issued_at

    def discard(self, user_id: uuid.UUID, close: Callable[[], Awaitable[None]]) -> None:
        self._issued.pop(close, None)
        closers = self._closers.get(user_id)
        if closers is not None:
            closers.discard(close)
            if not closers:
                del self._closers[user_id]

    @property
    def count(self) -> int:
        return sum(len(c) for c in self._closers.values())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="live-connections-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.close_inactive()
            except Exception as exc:  # noqa: BLE001 - a database blip must not end the watchdog
                logger.warning("live_watchdog_failed", error=type(exc).__name__)

    async def close_inactive(self) -> None:
        """One query for all users with open sockets; close the sockets of those no longer active, and those whose
        token was issued before the user's password changed."""
        user_ids = list(self._closers)
        if not user_ids:
            return
        async with self._session_maker()() as session:
            active: dict[uuid.UUID, datetime | None] = {
                row.id: row.password_changed_at
                for row in await session.execute(
                    select(User.id, User.password_changed_at).where(User.id.in_(user_ids), User.is_active.is_(True))
                )
            }
        for user_id in user_ids:
            changed = active.get(user_id)
            for close in list(self._closers.get(user_id, ())):
                issued = self._issued.get(close)
                if user_id not in active or (changed is not None and issued is not None and issued < changed):
                    await close()


class _Feed:
    """One socket's subscription: replay, then live events above the last id sent."""

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        principal: Principal,
        session_maker: async_sessionmaker[AsyncSession],
        *,
        everyone: bool,
    ) -> None:
        self.socket = socket
        self.principal = principal
        self.session_maker = session_maker
        self.everyone = everyone
        self.last_sent = 0

    async def newest_id(self) -> int:
        async with self.session_maker() as session:
            query = select(OrderEvent.event_id).where(OrderEvent.event_id.is_not(None))
            if not self.everyone:
                query = query.where(OrderEvent.user_id == self.principal.id)
            newest = await session.scalar(query.order_by(OrderEvent.event_id.desc()).limit(1))
        return int(newest or 0)

    async def catch_up(self, after: int) -> None:
        """Send events above ``after`` from the database (the newest ``REPLAY_LIMIT`` at most), oldest first."""
        async with self.session_maker() as session:
            query = select(
                OrderEvent.event_id,
                OrderEvent.type,
                OrderEvent.order_id,
                OrderEvent.user_id,
                OrderEvent.status,
                OrderEvent.previous_status,
                OrderEvent.at,
            ).where(OrderEvent.event_id > after)
            if not self.everyone:
                query = query.where(OrderEvent.user_id == self.principal.id)
            rows = (await session.execute(query.order_by(OrderEvent.event_id.desc()).limit(REPLAY_LIMIT))).all()
        for row in reversed(rows):
            await self.send(
                row.event_id,
                msgspec.json.encode(
                    {
                        "event_id": row.event_id,
                        "type": row.type,
                        "order_id": row.order_id,
                        "user_id": row.user_id,
                        "status": row.status,
                        "previous_status": row.previous_status,
                        "at": row.at,
                    }
                ),
            )

    async def send(self, event_id: int, payload: bytes) -> None:
        if event_id > self.last_sent:
            await self.socket.send_text(payload.decode())
            self.last_sent = event_id

    async def forward(self, events: AsyncGenerator[bytes, None]) -> None:
        async for payload in events:
            if payload == RESYNC:
                await self.catch_up(self.last_sent)
                continue
            event_id = msgspec.json.decode(payload, type=_EventId).event_id
            await self.send(event_id, payload)

    async def answer_pings(self) -> None:
        with contextlib.suppress(WebSocketDisconnect):  # the client left: the feed ends normally
            while True:
                message = await self.socket.receive_text()
                if message.strip() == "ping":
                    await self.socket.send_text(PONG)


class _EventId(msgspec.Struct):
    event_id: int


async def _authenticate(
    token: str | None, codec: TokenCodec, session_maker: async_sessionmaker[AsyncSession]
) -> tuple[Principal, datetime, datetime] | None:
    try:
        claims = authenticate(f"Bearer {token}" if token else None, codec)
    except DomainError:
        return None
    # A short session: a long-lived socket must not keep a pooled connection checked out.
    async with session_maker() as session:
        principal = await UserService(session=session).load_principal(claims.user_id, issued_at=claims.issued_at)
    return (principal, claims.expires_at, claims.issued_at) if principal is not None else None


async def _serve(
    socket: WebSocket[Any, Any, Any],
    *,
    token: str | None,
    since: int | None,
    everyone: bool,
    channels: ChannelsPlugin,
    event_channels: EventChannels,
    tokens: TokenCodec,
    live: LiveConnections,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    auth = await _authenticate(token, tokens, session_maker)
    if auth is None or (everyone and not auth[0].can(ORDERS_MANAGE)):
        await socket.close(code=POLICY_VIOLATION, reason="Invalid token or missing permission")
        return
    principal, expires_at, issued_at = auth
    socket.scope["user"] = principal
    feed = _Feed(socket, principal, session_maker, everyone=everyone)
    channel = event_channels.all_orders if everyone else event_channels.user(principal.id)
    closed = asyncio.Event()

    async def close_for_policy() -> None:
        if not closed.is_set():
            closed.set()
            with contextlib.suppress(Exception):
                await socket.close(code=POLICY_VIOLATION, reason="Session ended")

    # Subscribe and note the newest event before accepting: once the client's handshake completes, every event that
    # is published afterwards reaches it (an order placed right after connecting must not slip between the two).
    subscriber = await channels.subscribe([channel])
    live.add(principal.id, close_for_policy, issued_at=issued_at)
    try:
        if since is None:
            feed.last_sent = await feed.newest_id()
        await socket.accept()
        if since is not None:
            await feed.catch_up(since)
        expiry = max(0.0, (expires_at - datetime.now(UTC)).total_seconds())
        tasks = [
            asyncio.create_task(feed.forward(subscriber.iter_events())),
            asyncio.create_task(feed.answer_pings()),
            asyncio.create_task(asyncio.sleep(expiry)),
            asyncio.create_task(closed.wait()),
        ]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if tasks[2] in done:
            await close_for_policy()  # the token expired
        for task in done:
            if not task.cancelled() and (error := task.exception()) and not isinstance(error, WebSocketDisconnect):
                logger.warning("websocket_failed", error=type(error).__name__)
    finally:
        live.discard(principal.id, close_for_policy)
        await channels.unsubscribe(subscriber)


TokenParam = Annotated[str | None, QueryParameter(description="Access token (JWT).")]
SinceParam = Annotated[
    int | None, QueryParameter(ge=0, description="Replay events with a greater event_id first (at most 1000).")
]


@websocket("/ws/orders", exclude_from_auth=True)
async def order_feed(
    socket: WebSocket[Any, Any, Any],
    channels: NamedDependency[ChannelsPlugin],
    event_channels: NamedDependency[EventChannels],
    tokens: NamedDependency[TokenCodec],
    live: NamedDependency[LiveConnections],
    session_maker: NamedDependency[async_sessionmaker[AsyncSession]],
    token: TokenParam = None,
    since: SinceParam = None,
) -> None:
    """The caller's order events, live; ``"ping"`` is answered with ``{"type": "pong"}``."""
    await _serve(
        socket,
        token=token,
        since=since,
        everyone=False,
        channels=channels,
        event_channels=event_channels,
        tokens=tokens,
        live=live,
        session_maker=session_maker,
    )


@websocket("/ws/admin/orders", exclude_from_auth=True)
async def admin_order_feed(
    socket: WebSocket[Any, Any, Any],
    channels: NamedDependency[ChannelsPlugin],
    event_channels: NamedDependency[EventChannels],
    tokens: NamedDependency[TokenCodec],
    live: NamedDependency[LiveConnections],
    session_maker: NamedDependency[async_sessionmaker[AsyncSession]],
    token: TokenParam = None,
    since: SinceParam = None,
) -> None:
    """Every user's order events (requires orders:manage)."""
    await _serve(
        socket,
        token=token,
        since=since,
        everyone=True,
        channels=channels,
        event_channels=event_channels,
        tokens=tokens,
        live=live,
        session_maker=session_maker,
    )
