"""The outbox dispatcher: from committed ``order_events`` rows to WebSocket listeners and the email queue.

Why event ids are assigned here and not on insert
    Two transactions can commit in the opposite order from the one in which they inserted their rows. If the public
    ``event_id`` were the insertion sequence, a listener could receive 11, resume later "since 11", and never see 10,
    which committed after 11 was published. So a row gets its ``event_id`` only once it is visible (committed), by
    the dispatcher, as ``max(event_id) + n`` in insertion order, under a PostgreSQL advisory lock that also covers
    publishing. Hence: ids are handed out and published in one sequence by one dispatcher at a time; a row that can
    still commit has no id yet; and a listener resuming from any id finds every later event in the table.

What one round does (while holding the lock; its statements run on one autocommit connection)
    1. Re-publish rows that have an id but no ``dispatched_at`` (a previous dispatcher died or Redis was down).
    2. Give ids to new committed rows (one ``UPDATE … RETURNING`` statement: atomic).
    3. Publish them in id order: one pipelined Redis round trip for the WebSocket channels, and one SAQ email job
       for the batch, keyed by its first row so a repeat does not enqueue a second job while the first is pending.
    4. Mark them dispatched; repeat 2 to 4 while a full batch came back. Then release the lock and look once more: an
       event that committed while we held the lock (its own round found the lock taken and gave up) is picked up
       here. The dispatch loop skips that last look: its next poll finds them anyway.

If Redis is unreachable (or publishing takes longer than ``PUBLISH_TIMEOUT_S``) the round stops before marking
anything and closes its connections, which releases the lock; ids already assigned stay, and the next round
re-publishes them first, in order. Nothing is lost, and ids never go backwards.

The lock is a transaction-level advisory lock (``pg_try_advisory_xact_lock``) held by a transaction left open on a
second connection for the length of the round, because the round's own statements must each commit on their way (an
id published must stay assigned). A session lock would do on a direct connection but not behind a transaction-pooling
proxy (``DB_POOL_MODE=transaction``: PgBouncer), where the unlock may reach another server connection than the lock
and leave the lock taken for good; an open transaction keeps its server connection. The price, in both modes: one
more pooled connection and one more round trip per round (not per event). The seeder takes the same key with
``pg_advisory_xact_lock`` (``app.testing.seed``): session and transaction advisory locks on one key exclude each other.

Who runs rounds: the worker's dispatch loop (it looks for committed events every ``POLL_INTERVAL``, 25 ms), the
worker's cron sweep, and an API process that serves an order timeline with undispatched rows.

Batching: a round costs about the same statements, Redis round trips and one email job whether it carries one event
or hundreds, so the loop starts rounds at most every ``ROUND_INTERVAL``. An event after a quiet spell goes out within
about 25 ms; under a steady stream each round carries everything that committed in the last 50 ms, and the worker's
cost per event falls as the rate rises.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import asyncpg
import msgspec
from redis.asyncio import Redis
from sqlalchemy import BigInteger, Integer, Table, any_, bindparam, exists, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.background import BackgroundLoop, backoff
from app.core.logging import get_logger
from app.db.prepared import Prepared
from app.domain.orders.events import EVENT_COLUMNS, OrderEventRead, event_from_row
from app.domain.orders.models import OrderEvent

__all__ = (
    "LAST_EVENT_ID",
    "LOCK_KEY",
    "EventChannels",
    "OutboxDispatcher",
)

logger = get_logger("app.outbox")

#: Advisory-lock key that serialises dispatch rounds across every process.
LOCK_KEY: Final = 0x6F7574626F78  # "outbox"
BATCH: Final = 500
#: How long publishing one batch (Redis pipeline and email job) may take before the round gives up, lock released.
PUBLISH_TIMEOUT_S: Final = 10.0
#: How often the dispatch loop looks for committed events.
POLL_INTERVAL: Final = 0.025
#: The least time between the starts of two rounds of one dispatch loop (under load, rounds carry more events).
ROUND_INTERVAL: Final = 0.05


@dataclass(frozen=True, slots=True)
class EventChannels:
    """The Redis pub/sub channels events go to: ``orders.<db>.user.<user id>`` and ``orders.<db>.all``.

    Redis pub/sub ignores the database number, so the channels carry it: deployments (or test runs) that share one
    Redis server on different databases, as their queues and rate limits already do, never see each other's events.
    """

    prefix: str

    @classmethod
    def for_redis(cls, redis: Redis) -> EventChannels:
        return cls(f"orders.{redis.connection_pool.connection_kwargs.get('db', 0)}")

    @property
    def all_orders(self) -> str:
        return f"{self.prefix}.all"

    def user(self, user_id: uuid.UUID | str) -> str:
        return f"{self.prefix}.user.{user_id}"


@dataclass(frozen=True, slots=True)
class _Row:
    row_id: int
    event: OrderEventRead


EmailEnqueuer = Callable[[Sequence[int]], Awaitable[None]]

_EVENTS: Final = cast("Table", OrderEvent.__table__)
_OUTBOX_COLUMNS: Final = (_EVENTS.c.id, *EVENT_COLUMNS)
_BATCH_LIMIT: Final = bindparam("limit", type_=Integer)
#: The last public event id handed out (0 before the first): the dispatcher continues from it, and so does the
#: seeder, which hands out ids itself while holding the dispatcher's lock.
LAST_EVENT_ID: Final = select(func.coalesce(func.max(_EVENTS.c.event_id), literal_column("0")).label("last"))
_NEW_ROWS: Final = (
    select(_EVENTS.c.id, func.row_number().over(order_by=_EVENTS.c.id).label("n"))
    .where(_EVENTS.c.event_id.is_(None), _EVENTS.c.dispatched_at.is_(None))
    .order_by(_EVENTS.c.id)
    .limit(_BATCH_LIMIT)
    .cte("pending")
)
_BASE: Final = LAST_EVENT_ID.cte("base")
# Core statements against the model, compiled once, run on the connection's asyncpg driver in autocommit mode: each
# statement is atomic on its own, and the advisory lock (held by a transaction on another connection) is what
# serialises rounds.
_LEFTOVERS: Final = Prepared(
    select(*_OUTBOX_COLUMNS)
    .where(_EVENTS.c.event_id.is_not(None), _EVENTS.c.dispatched_at.is_(None))
    .order_by(_EVENTS.c.event_id)
    .limit(_BATCH_LIMIT)
)
#: Ids for the oldest committed rows without one, ``max(event_id) + n`` in insertion order, in one atomic statement.
_ASSIGN: Final = Prepared(
    update(_EVENTS)
    .values(event_id=_BASE.c.last + _NEW_ROWS.c.n)
    .where(_EVENTS.c.id == _NEW_ROWS.c.id)
    .returning(*_OUTBOX_COLUMNS)
)
_MARK: Final = Prepared(
    update(_EVENTS)
    .values(dispatched_at=func.now())
    .where(_EVENTS.c.id == any_(bindparam("row_ids", type_=ARRAY(BigInteger))), _EVENTS.c.dispatched_at.is_(None))
)
_ANY_PENDING: Final = Prepared(select(exists().where(_EVENTS.c.dispatched_at.is_(None))))
_ORDER_PENDING: Final = Prepared(
    select(exists().where(_EVENTS.c.order_id == bindparam("order_id"), _EVENTS.c.event_id.is_(None)))
)
_TRY_LOCK: Final = Prepared(select(func.pg_try_advisory_xact_lock(bindparam("key", type_=BigInteger))))


def _rows(records: list[Any]) -> list[_Row]:
    rows = [_Row(record["id"], event_from_row(record)) for record in records]
    rows.sort(key=lambda r: r.event.event_id)  # RETURNING has no order
    return rows


class OutboxDispatcher:
    """Runs dispatch rounds. Safe to call from any number of processes and tasks at once."""

    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis,
        enqueue_emails: EmailEnqueuer,
        *,
        publish_timeout: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        self._engine = engine
        self._redis = redis
        self._publish_timeout = publish_timeout
        self.channels = EventChannels.for_redis(redis)
        self._enqueue_emails = enqueue_emails

    async def dispatch(self, *, look_again: bool = True) -> int:
        """One round (see the module docstring). Returns how many events were published; 0 if another holds the lock.

        ``look_again=False`` skips the look for events that committed while the lock was held (for a caller that
        looks again soon anyway, like the dispatch loop).
        """
        published = 0
        while True:
            async with self._driver() as driver:
                async with self._lock() as held:
                    if not held:
                        # The holder looks for pending rows after it lets go (a dispatch loop: at its next poll).
                        return published
                    published += await self._drain(driver)
                if not look_again or not await _ANY_PENDING.fetchval(driver):
                    return published

    @contextlib.asynccontextmanager
    async def _lock(self) -> AsyncIterator[bool]:
        """Try the outbox lock in a transaction of its own, kept open on its connection until the block ends.

        Yields whether it was taken. On a failure or cancellation :meth:`_driver` closes the connection, which ends
        the transaction and releases the lock on the server.
        """
        async with self._driver() as holder:
            await holder.execute("BEGIN")
            yield bool(await _TRY_LOCK.fetchval(holder, key=LOCK_KEY))
            await holder.execute("ROLLBACK")  # nothing was written: ending the transaction only lets the lock go

    @contextlib.asynccontextmanager
    async def _driver(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection's asyncpg driver, closed outright if the block fails or is cancelled.

        Redis down, or cancelled mid-statement: the server may still be inside the statement's implicit transaction,
        holding its table locks or the outbox lock, without the client knowing (a cancelled poll once kept
        ``order_events`` locked until the connection was closed). A pooled connection must never go back like that,
        and closing it is the one sure way out. ``terminate()`` is synchronous, so it happens even when the
        cancellation is repeated at every await (anyio cancel scopes do that), which once left a connection checked
        out, idle, holding the lock for good; telling SQLAlchemy afterwards is best effort.
        """
        async with self._engine.connect() as connection:
            driver: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
            try:
                yield driver
            except BaseException:
                driver.terminate()
                await connection.invalidate()
                raise

    async def _drain(self, driver: asyncpg.Connection) -> int:
        published = 0
        # Leftovers (ids without dispatched_at) come only from a round that failed: re-published first, in order.
        for statement in (_LEFTOVERS, _ASSIGN):
            while True:
                rows = _rows(await statement.fetch(driver, limit=BATCH))
                if rows:
                    # Bounded: a round that hangs on Redis would hold the lock, and stop every dispatcher, for good.
                    async with asyncio.timeout(self._publish_timeout):
                        await self._publish(rows)
                    await _MARK.execute(driver, row_ids=[r.row_id for r in rows])
                    published += len(rows)
                if len(rows) < BATCH:
                    break  # all there was when the statement ran
        return published

    async def _publish(self, rows: list[_Row]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for row in rows:
                payload = msgspec.json.encode(row.event)
                pipe.publish(self.channels.user(row.event.user_id), payload)
                pipe.publish(self.channels.all_orders, payload)
            await pipe.execute()
        await self._enqueue_emails([r.row_id for r in rows])
        logger.debug("events_published", count=len(rows), last_event_id=rows[-1].event.event_id)

    async def any_pending(self) -> bool:
        """Whether any committed event is not dispatched yet (an index-only look at the undispatched rows)."""
        async with self._driver() as driver:
            return bool(await _ANY_PENDING.fetchval(driver))

    async def has_pending(self, order_id: uuid.UUID) -> bool:
        async with self._driver() as driver:
            return bool(await _ORDER_PENDING.fetchval(driver, order_id=order_id))

    async def settle(self, order_id: uuid.UUID, *, within: float = 2.0) -> None:
        """Make the order's committed events visible in its timeline: dispatch them, or wait for whoever is."""
        deadline = asyncio.get_running_loop().time() + within
        while await self.has_pending(order_id):
            try:
                await self.dispatch()
            except Exception as exc:  # noqa: BLE001 - Redis down: the timeline shows what is dispatched so far
                logger.warning("timeline_dispatch_failed", error=type(exc).__name__)
                return
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.02)


class DispatchLoop(BackgroundLoop):
    """Looks for committed events every ``POLL_INTERVAL`` (one indexed ``EXISTS``) and runs a round when there are.

    Not ``LISTEN``/``NOTIFY``: PostgreSQL serialises every committing transaction that notified on one global lock,
    held through the commit's WAL flush, so a trigger that notified on each event made all order placements commit
    one at a time (measured: most waiting backends were queued on it under load, CPU idle). A poll costs one cheap
    statement per interval and no lock at all.
    """

    def __init__(self, dispatcher: OutboxDispatcher, *, poll_interval: float = POLL_INTERVAL) -> None:
        super().__init__("outbox-dispatch-loop")
        self._dispatcher = dispatcher
        self._poll_interval = poll_interval

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        last_round = -ROUND_INTERVAL
        while True:
            # Rounds start at most every ROUND_INTERVAL: under load each carries everything committed meanwhile.
            await asyncio.sleep(max(self._poll_interval, last_round + ROUND_INTERVAL - loop.time()))
            try:
                if await self._dispatcher.any_pending():
                    last_round = loop.time()
                    # Events that commit during the round are found by the next poll: no need to look again.
                    await self._dispatcher.dispatch(look_again=False)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - keep dispatching through outages
                failures += 1
                logger.warning("outbox_dispatch_failed", error=type(exc).__name__, attempt=failures)
                await asyncio.sleep(backoff(failures))
