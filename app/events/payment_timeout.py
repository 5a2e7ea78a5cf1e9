"""The payment timeout: every worker cancels the orders still ``pending`` ``ORDER_PAYMENT_TTL`` seconds after they
were placed, so unpaid orders give their stock back (contract §6).

Each worker process runs one :class:`PaymentTimeoutLoop`. Every ``PAYMENT_EXPIRY_INTERVAL`` (default 1 s: a sweep
with nothing due is one index probe) it sweeps: batch after batch of up to
:data:`~app.domain.orders.services.EXPIRY_BATCH` orders, until none is left due, at most ``PAYMENT_EXPIRY_RATE``
orders per second. An order is therefore cancelled about one interval plus one batch (about 1.1 s) after its
deadline, and 100,000 orders falling due in the same instant within 30 s of it with one worker: 1 s + 100,000 /
3,500 per second = 29.6 s (``tests/benchmarks/payment_timeout.py``, README "Payment timeout"). The rule itself (which
orders, the stock, the event and its ``reason``, exactly once across workers) is
:meth:`~app.domain.orders.services.OrderService.expire_unpaid`; this module only decides when to run it.

The pace, ``PAYMENT_EXPIRY_RATE`` (default 3,500 orders/s per worker): a backlog (every order of a sale falling due
at once) is drained at that pace rather than flat out (about 12,000 orders/s here), which took most of the machine
from order placement (55 % slower). 3,500/s is fast enough that 100,000 orders due at once are cancelled within the
contract's 30 s, and leaves placement about four fifths of this 2-core machine (19-22 % slower in four runs; at
4,000/s 22-26 %; the contract's floor for a backlog is 2,000 orders/s). Several workers sweep in parallel, each at
this pace.

Not a SAQ cron job: cron's finest grain is a minute, and a job per sweep would add queue round trips for nothing —
any number of workers may sweep at the same time (``FOR UPDATE SKIP LOCKED`` splits the due orders between them).
The events it records go out through the outbox like every other (published, emailed, in the timeline).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.background import BackgroundLoop, backoff
from app.core.logging import get_logger
from app.db.prepared import DirectPool
from app.domain.orders.services import EXPIRY_BATCH, FIRST_PENDING, OrderService

__all__ = ("PaymentTimeoutLoop", "expire_unpaid_orders")

logger = get_logger("app.payment_timeout")


async def expire_unpaid_orders(
    orders: OrderService, *, ttl: int, now: datetime | None = None, rate: float | None = None
) -> int:
    """One sweep: cancel every order still pending ``ttl`` seconds after it was placed, at most ``rate`` orders per
    second (None: flat out). Returns how many."""
    loop = asyncio.get_running_loop()
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=ttl)
    cancelled = 0
    after = FIRST_PENDING
    started = loop.time()
    while True:
        batch = await orders.expire_unpaid(placed_before=cutoff, after=after, limit=EXPIRY_BATCH)
        cancelled += batch.count
        after = batch.last  # orders skipped while locked elsewhere are looked at again by the next sweep
        if batch.count < EXPIRY_BATCH:  # nothing left due (or the rest is another worker's batch in flight)
            return cancelled
        if rate is not None:
            await asyncio.sleep(max(0.0, started + cancelled / rate - loop.time()))


class PaymentTimeoutLoop(BackgroundLoop):
    """Sweeps every ``interval`` seconds while the worker runs; keeps going through database outages."""

    def __init__(
        self,
        pool: DirectPool,
        session_maker: async_sessionmaker[AsyncSession],
        *,
        ttl: int,
        interval: float,
        rate: float,
    ) -> None:
        super().__init__("payment-timeout-loop")
        # The service runs its statements on the worker's direct pool; the session factory is never used here.
        self._orders = OrderService(session_maker, direct=pool)
        self._ttl = ttl
        self._interval = interval
        self._rate = rate or None  # 0: flat out

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                cancelled = await expire_unpaid_orders(self._orders, ttl=self._ttl, rate=self._rate)
                if cancelled:
                    logger.info("unpaid_orders_cancelled", count=cancelled, ttl=self._ttl)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - keep sweeping through outages; nothing was half-done
                failures += 1
                logger.warning("payment_timeout_sweep_failed", error=type(exc).__name__, attempt=failures)
                await asyncio.sleep(backoff(failures))
            await asyncio.sleep(self._interval)
