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
users who were deactivated, the admin-feed sockets of users who lost ``orders:manage``, and the sockets opened with a
token issued before the user's last password change or reset, within
``LIVE_CHECK_INTERVAL`` seconds (5 by default), on every process.

Limits: a user holds at most ``WS_MAX_PER_USER`` sockets across all processes (leases in Redis, see
``app.events.socket_leases``), and ``?since=`` must be an integer in 0..2^63-1; both are refused with 1008 before
the handshake completes (an HTTP 403 to the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import msgspec
from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin, Subscriber
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.handlers import WebsocketRouteHandler
from litestar.params import QueryParameter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.auth import Principal, authenticate
from app.core.background import cancel_and_wait
from app.core.errors import DomainError
from app.core.logging import get_logger
from app.core.permissions import ORDERS_MANAGE
from app.core.security import TokenCodec
from app.db.prepared import DirectPool
from app.domain.accounts.models import Role, User, user_roles
from app.domain.accounts.services import UserService
from app.domain.orders.events import EVENT_COLUMNS, event_from_row
from app.domain.orders.models import OrderEvent
from app.events.outbox import EventChannels
from app.events.socket_leases import REDIS_UNAVAILABLE, SocketLeases

__all__ = (
    "PING",
    "POLICY_VIOLATION",
    "REPLAY_LIMIT",
    "SERVICE_RESTART",
    "LiveConnections",
    "LiveSocket",
    "Pong",
    "ResilientRedisPubSubBackend",
    "admin_order_feed",
    "order_feed",
)

logger = get_logger("app.live")

#: Close code for a refused or ended session: missing, invalid or expired token, missing permission, deactivated user.
POLICY_VIOLATION: Final = 1008
#: Close code when the process shuts down (uvicorn closes open sockets with it); clients reconnect with ``since``.
SERVICE_RESTART: Final = 1012
WATCHDOG_INTERVAL: Final = 5.0
REPLAY_LIMIT: Final = 1000
RESYNC: Final = b'{"type":"_resync"}'
#: The text message a client sends to check the connection; it is answered with ``Pong``.
PING: Final = "ping"


class Pong(msgspec.Struct, frozen=True, tag_field="type", tag="pong"):
    """The answer to a text ``ping``."""


PONG: Final = msgspec.json.encode(Pong()).decode()
_REDIS_OUTAGE: Final = (RedisConnectionError, RedisTimeoutError, OSError)


class ResilientRedisPubSubBackend(RedisChannelsPubSubBackend):
    """Litestar's Redis pub/sub backend, made to ride out Redis outages.

    The stock backend lets a connection error end ``stream_events`` (which silently stops all WebSocket delivery in
    the process for good) and lets ``subscribe``/``unsubscribe`` fail a socket that connects or leaves while Redis
    is down. Here a failed subscribe is remembered, the stream waits and re-subscribes, and once it is back every
    subscribed channel gets a resync marker so its sockets catch up from the database.

    It reads and writes the stock backend's private ``_pub_sub`` and ``_has_subscribed`` (litestar is pinned to
    2.25.x; tests/unit/test_private_apis.py fails if they change); no upstream issue yet.
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


@dataclass(eq=False, slots=True)
class LiveSocket:
    """One open socket as the watchdog sees it: whose, its lease, what it needs to stay open, how to close it."""

    user_id: uuid.UUID
    permission: str | None
    close: Callable[[], Awaitable[None]]
    #: When the socket's access token was issued: a password change or reset ends the sockets opened before it.
    issued_at: datetime | None = None
    lease_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: Set once admitted; only then is its lease renewed (a renewal must not take a lease the cap has not granted).
    admitted: bool = False


class LiveConnections:
    """The sockets this process holds, their leases, and the watchdog that ends access that was taken away.

    Every ``interval`` seconds (``LIVE_CHECK_INTERVAL``, 5 by default) it renews the leases of the sockets held here
    (one Redis round trip, see ``app.events.socket_leases``) and reads, in one query, which of their users are still
    active and what permissions they hold now; a socket whose user was deactivated, or that needs a permission its
    user lost (``orders:manage`` on the admin feed), is closed with 1008. Every process runs its own watchdog over its
    own sockets, so a change made through any process reaches all of them within one interval, at the cost of one
    query and one Redis round trip per interval per process however many sockets and messages there are.
    """

    def __init__(
        self,
        session_maker: Callable[[], async_sessionmaker[AsyncSession]],
        leases: SocketLeases,
        *,
        interval: float = WATCHDOG_INTERVAL,
    ) -> None:
        self._session_maker = session_maker
        self._leases = leases
        self._interval = interval
        self._sockets: dict[uuid.UUID, set[LiveSocket]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    async def admit(
        self,
        user_id: uuid.UUID,
        close: Callable[[], Awaitable[None]],
        *,
        permission: str | None = None,
        issued_at: datetime | None = None,
    ) -> LiveSocket | None:
        """Register a socket if its user holds fewer than ``WS_MAX_PER_USER`` across all processes, else None.

        The socket is counted here before Redis is asked, so a burst on this process cannot pass the cap while the
        answers are in flight. If Redis is not answering, this process's own count is the cap (fail open to a
        per-process limit, see ``app.events.socket_leases``); the next renewal registers the socket in Redis.
        """
        if len(self._sockets.get(user_id, ())) >= self._leases.limit:
            return None
        live = LiveSocket(user_id, permission, close, issued_at)
        self._sockets[user_id].add(live)
        try:
            admitted = await self._leases.acquire(user_id, live.lease_id)
        except REDIS_UNAVAILABLE as exc:
            logger.warning("socket_lease_unavailable", error=type(exc).__name__)
            admitted = True
        except BaseException:
            self._forget(live)
            raise
        if not admitted:
            self._forget(live)
            return None
        live.admitted = True
        return live

    async def release(self, live: LiveSocket) -> None:
        self._forget(live)
        if live.admitted:
            await self._leases.release(live.user_id, live.lease_id)

    def _forget(self, live: LiveSocket) -> None:
        held = self._sockets.get(live.user_id)
        if held is not None:
            held.discard(live)
            if not held:
                del self._sockets[live.user_id]

    @property
    def count(self) -> int:
        return sum(len(s) for s in self._sockets.values())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="live-connections-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            # Leases first: a slow database must not let the leases of open sockets lapse.
            try:
                await self.renew_leases()
            except Exception as exc:  # noqa: BLE001 - Redis down: leases come back at the first renewal after it
                logger.warning("socket_lease_renewal_failed", error=type(exc).__name__)
            try:
                await self.close_revoked()
            except Exception as exc:  # noqa: BLE001 - a database blip must not end the watchdog
                logger.warning("live_watchdog_failed", error=type(exc).__name__)

    async def renew_leases(self) -> None:
        held = {
            user_id: [s.lease_id for s in sockets if s.admitted] for user_id, sockets in list(self._sockets.items())
        }
        await self._leases.renew({user_id: ids for user_id, ids in held.items() if ids})

    async def close_revoked(self) -> None:
        """One query for all users with open sockets; close the sockets whose user is inactive or lost the permission
        the socket needs."""
        user_ids = list(self._sockets)
        if not user_ids:
            return
        async with self._session_maker()() as session:
            rows = await session.execute(
                select(User.id, User.password_changed_at, Role.permissions)
                .outerjoin(user_roles, user_roles.c.user_id == User.id)
                .outerjoin(Role, Role.name == user_roles.c.role_name)
                .where(User.id.in_(user_ids), User.is_active.is_(True))
            )
        permissions: dict[uuid.UUID, set[str]] = defaultdict(set)
        changed: dict[uuid.UUID, datetime | None] = {}
        for user_id, password_changed_at, granted in rows:
            permissions[user_id].update(granted or ())
            changed[user_id] = password_changed_at
        for user_id in user_ids:
            for live in list(self._sockets.get(user_id, ())):
                if user_id not in permissions or _revoked(live, permissions[user_id], changed.get(user_id)):
                    await live.close()


def _revoked(live: LiveSocket, permissions: set[str], password_changed_at: datetime | None) -> bool:
    """The socket needs a permission its user lost, or its token predates the user's last password change."""
    if live.permission and live.permission not in permissions:
        return True
    return password_changed_at is not None and live.issued_at is not None and live.issued_at < password_changed_at


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
            query = select(*EVENT_COLUMNS).where(OrderEvent.event_id > after)
            if not self.everyone:
                query = query.where(OrderEvent.user_id == self.principal.id)
            rows = (await session.execute(query.order_by(OrderEvent.event_id.desc()).limit(REPLAY_LIMIT))).mappings()
            events = [event_from_row(row) for row in rows]
        for event in reversed(events):
            await self.send(event.event_id, msgspec.json.encode(event))

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
                if message.strip() == PING:
                    await self.socket.send_text(PONG)


class _EventId(msgspec.Struct):
    event_id: int


async def _authenticate(
    token: str | None, codec: TokenCodec, session_maker: async_sessionmaker[AsyncSession], direct: DirectPool
) -> tuple[Principal, datetime, datetime] | None:
    try:
        claims = authenticate(f"Bearer {token}" if token else None, codec)
    except DomainError:
        return None
    # One statement on the direct pool, as for every request: a long-lived socket keeps no connection checked out.
    users = UserService(session=session_maker, direct=direct)
    principal = await users.load_principal(claims.user_id, issued_at=claims.issued_at)
    return (principal, claims.expires_at, claims.issued_at) if principal is not None else None


async def _serve(
    socket: WebSocket[Any, Any, Any],
    *,
    token: str | None,
    since: str | None,
    everyone: bool,
    channels: ChannelsPlugin,
    event_channels: EventChannels,
    tokens: TokenCodec,
    live: LiveConnections,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    try:
        resume_after = parse_since(since)
    except ValueError:
        await socket.close(code=POLICY_VIOLATION, reason="since must be an integer in 0..2^63-1")
        return
    auth = await _authenticate(token, tokens, session_maker, socket.app.state.components.direct)
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

    admitted = await live.admit(
        principal.id, close_for_policy, permission=ORDERS_MANAGE if everyone else None, issued_at=issued_at
    )
    if admitted is None:
        await socket.close(code=POLICY_VIOLATION, reason="Too many open sockets for this user")
        return
    try:
        # Subscribe and note the newest event before accepting: once the client's handshake completes, every event
        # that is published afterwards reaches it (an order placed right after connecting must not slip between).
        subscriber = await channels.subscribe([channel])
        try:
            await _stream(socket, feed, subscriber, resume_after, expires_at, closed, close_for_policy)
        finally:
            await channels.unsubscribe(subscriber)
    finally:
        await live.release(admitted)


async def _stream(
    socket: WebSocket[Any, Any, Any],
    feed: _Feed,
    subscriber: Subscriber,
    since: int | None,
    expires_at: datetime,
    closed: asyncio.Event,
    close_for_policy: Callable[[], Awaitable[None]],
) -> None:
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


#: Event ids are PostgreSQL bigints.
MAX_EVENT_ID: Final = 2**63 - 1


def parse_since(raw: str | None) -> int | None:
    """``?since=`` as an event id (None when absent); ValueError unless it is ASCII digits for 0..2^63-1.

    Parsed by hand rather than as an ``int`` query parameter: Litestar closes a socket whose parameters fail
    validation with 4500 (its "internal error"), and a value past the bigint range passed validation and failed
    the replay query after the handshake (a 1011 and a traceback). ``int()`` alone would also take ``+5``, `` 5``,
    ``5_0`` and non-ASCII digits.
    """
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw.lstrip("0")) > len(str(MAX_EVENT_ID)):
        raise ValueError(raw)
    value = int(raw)
    if value > MAX_EVENT_ID:
        raise ValueError(raw)
    return value


TokenParam = Annotated[str | None, QueryParameter(description="Access token (JWT).")]
SinceParam = Annotated[
    str | None,
    QueryParameter(
        description="Replay events with a greater event_id first (at most 1000): an integer in 0..2^63-1, else 1008."
    ),
]


def _feed(path: str, *, everyone: bool, summary: str) -> WebsocketRouteHandler:
    """The two feeds differ only in whose events they carry (``everyone`` needs orders:manage)."""

    async def feed(
        socket: WebSocket[Any, Any, Any],
        channels: NamedDependency[ChannelsPlugin],
        event_channels: NamedDependency[EventChannels],
        tokens: NamedDependency[TokenCodec],
        live: NamedDependency[LiveConnections],
        session_maker: NamedDependency[async_sessionmaker[AsyncSession]],
        token: TokenParam = None,
        since: SinceParam = None,
    ) -> None:
        await _serve(
            socket,
            token=token,
            since=since,
            everyone=everyone,
            channels=channels,
            event_channels=event_channels,
            tokens=tokens,
            live=live,
            session_maker=session_maker,
        )

    feed.__doc__ = summary
    return websocket(path, exclude_from_auth=True)(feed)


order_feed = _feed(
    "/ws/orders",
    everyone=False,
    summary='The caller\'s order events, live; ``"ping"`` is answered with ``{"type": "pong"}``.',
)
admin_order_feed = _feed(
    "/ws/admin/orders",
    everyone=True,
    summary="Every user's order events (requires orders:manage).",
)
