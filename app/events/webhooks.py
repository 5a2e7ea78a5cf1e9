"""Sending webhooks: deliveries created from committed events, attempted by SAQ jobs, retried from the database.

The path of one event to one endpoint
    1. **Fan-out** (the pump, every ``PUMP_INTERVAL``): one statement inserts a ``webhook_deliveries`` row for each
       event above each active endpoint's cursor (``last_event_id``) that the endpoint subscribes to, and moves the
       cursor, atomically. Only committed events have an ``event_id``, and ids become visible without gaps (see
       ``app.events.outbox``), so a rolled-back change never gets a delivery, and a change committed while Redis,
       the worker or the receiver was down gets one as soon as a pump runs. Nothing here touches the outbox round:
       WebSocket events and emails never wait for webhooks.
    2. **Claim**: the same pass takes due deliveries (``pending``, ``next_attempt_at`` passed, not claimed) for
       ``CLAIM_S`` and enqueues them in jobs of up to ``JOB_BATCH``, on their own SAQ queue (``webhooks``): a slow
       receiver occupies webhook job slots, never the email queue's. If enqueueing fails (Redis down), the claims
       are released; if the worker dies, they lapse. The pump keeps at most ``job_budget`` webhook jobs queued or
       running: the budget halves whenever its event loop lags (with ``WORKER_IN_PROCESS`` that loop also runs the
       outbox dispatch and the emails, which must not queue behind webhook requests; beside ``litestar workers
       run`` it is a process of its own, :class:`WebhookProcess`) and grows back by one per quiet pass. The backlog
       stays in the database, where retries are scheduled anyway.
    3. **Attempt** (``deliver_webhooks``): each delivery is POSTed concurrently, signed per Standard Webhooks with
       ``webhook-id`` = the delivery's id (the same on every attempt). 2xx within ``ATTEMPT_TIMEOUT_S`` is success;
       anything else schedules the next attempt ``WEBHOOK_RETRY_DELAY * 2^(n-1)`` seconds later (n = attempts made,
       at most ``MAX_RETRY_DELAY_S``), until ``attempt_limit`` attempts, then the delivery is ``failed``.
    4. **Circuit breaker**: ``WEBHOOK_DISABLE_AFTER`` deliveries in a row that failed for good deactivate the endpoint
       (``disabled_reason``) and queue an email to every active holder of ``webhooks:manage``.

SSRF at delivery time: the HTTP client's network backend resolves the host itself, refuses the connection if any
address is not public (unless ``WEBHOOK_ALLOW_PRIVATE``), and connects to the address it checked — there is no
second lookup a DNS-rebinding attacker could answer differently. Redirects are not followed (a 3xx is a failure).
Secrets are read from the database for signing and are never logged or put in an error message; each one is
registered with the log redaction as it is loaded (``register_secrets``: a set lookup when already known), so an
error message that quotes one (a library's, a database's) is written with ``[REDACTED]`` in its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

import msgspec
import uvloop
from saq.queue import Queue
from saq.types import Context
from saq.worker import Worker

from app.config import Settings
from app.core.background import BackgroundLoop, cancel_and_wait
from app.core.logging import configure_logging, get_logger, register_secrets
from app.db.prepared import DirectPool
from app.domain.orders.events import OrderEventRead
from app.domain.webhooks.schemas import EventType, WebhookMessage
from app.domain.webhooks.targets import TargetPolicy
from app.events.email import EmailSender, OutgoingEmail, email_sender_for
from app.events.prompt_stop import PromptStop

if TYPE_CHECKING:
    from app.events.webhook_client import AttemptResult, DeliveryClient

__all__ = (
    "ATTEMPT_TIMEOUT_S",
    "WEBHOOK_QUEUE",
    "WebhookProcess",
    "WebhookPump",
    "WebhookWorker",
    "retry_delay",
    "webhook_runner",
)

logger = get_logger("app.webhooks")

WEBHOOK_QUEUE: Final = "webhooks"
DELIVER_JOB: Final = "deliver_webhooks"
DISABLED_EMAIL_JOB: Final = "email_webhook_disabled"
#: A receiver has this long to answer (connect, send, status line); the contract's 10 s.
ATTEMPT_TIMEOUT_S: Final = 10.0
#: How long a stopping webhook worker waits for its running attempts.
STOP_GRACE_S: Final = ATTEMPT_TIMEOUT_S + 2
PUMP_INTERVAL: Final = 0.1
#: Deliveries claimed per pass, and per job (a job sends its deliveries concurrently).
CLAIM_BATCH: Final = 500
JOB_BATCH: Final = 5
#: A claim lapses after this long (the job runs ~10 s at most; the margin covers a queue wait).
CLAIM_S: Final = 120.0
JOB_TIMEOUT_S: Final = 60
#: Above this many queued webhook jobs the pump stops claiming (back-pressure into the database).
MAX_QUEUED_JOBS: Final = 50
#: Loop lag (how late the pump's own sleep ends) above which webhook work backs off: the worker's event loop also
#: runs the outbox dispatch and the email jobs, and they must not wait behind hundreds of webhook requests.
LAG_LIMIT_S: Final = 0.003
#: Events fanned out per endpoint per pass: a long-idle endpoint catches up in steps, not one huge statement.
FAN_OUT_STEP: Final = 1000
MAX_RETRY_DELAY_S: Final = 86_400.0
WEBHOOK_CONCURRENCY: Final = 10


def retry_delay(first_delay: float, attempts_made: int) -> float:
    """Seconds until the next attempt after ``attempts_made`` failed ones: 5, 10, 20, … with the default 5 s."""
    return float(min(first_delay * 2 ** (attempts_made - 1), MAX_RETRY_DELAY_S))


# ------------------------------------------------------------------------------------------------------ statements

_FAN_OUT: Final = """
    WITH head AS (SELECT coalesce(max(event_id), 0) AS last FROM order_events),
    behind AS (
        SELECT w.id, w.event_types, w.last_event_id, least(head.last, w.last_event_id + $2) AS upto
        FROM webhook_endpoints AS w, head
        WHERE w.is_active AND w.last_event_id < head.last
        FOR UPDATE OF w SKIP LOCKED
    ),
    created AS (
        INSERT INTO webhook_deliveries (id, endpoint_id, event_row_id, event_id, event_type, status, attempts,
                                        attempt_limit, next_attempt_at, redeliver_requested, created_at)
        SELECT gen_random_uuid(), b.id, e.id, e.event_id, e.type, 'pending', 0, $1, now(), false, now()
        FROM behind AS b
        JOIN order_events AS e ON e.event_id > b.last_event_id AND e.event_id <= b.upto AND e.type = ANY(b.event_types)
        ON CONFLICT (endpoint_id, event_row_id) DO NOTHING
        RETURNING 1
    ),
    moved AS (UPDATE webhook_endpoints AS w SET last_event_id = b.upto FROM behind AS b WHERE w.id = b.id)
    SELECT count(*) FROM created
"""
_CLAIM: Final = """
    UPDATE webhook_deliveries AS d SET claimed_until = now() + make_interval(secs => $2)
    FROM (
        SELECT d2.id FROM webhook_deliveries AS d2 JOIN webhook_endpoints AS w ON w.id = d2.endpoint_id
        WHERE d2.status = 'pending' AND d2.next_attempt_at <= now()
          AND (d2.claimed_until IS NULL OR d2.claimed_until < now())
          AND (w.is_active OR d2.redeliver_requested)
        ORDER BY d2.next_attempt_at
        LIMIT $1
        FOR UPDATE OF d2 SKIP LOCKED
    ) AS due
    WHERE d.id = due.id
    RETURNING d.id, d.attempts
"""
_RELEASE: Final = "UPDATE webhook_deliveries SET claimed_until = NULL WHERE id = ANY($1::uuid[]) AND status = 'pending'"
_LOAD: Final = """
    SELECT d.id, d.attempts, w.url, w.secret,
           CASE WHEN w.previous_secret_until > now() THEN w.previous_secret END AS previous_secret,
           to_jsonb(e) AS event
    FROM webhook_deliveries AS d
    JOIN webhook_endpoints AS w ON w.id = d.endpoint_id
    JOIN order_events AS e ON e.id = d.event_row_id
    WHERE d.id = ANY($1::uuid[]) AND d.status = 'pending'
"""
#: Every success of a job in one statement: ``(id, status code, attempts made before)`` as three arrays.
_RECORD_SUCCESSES: Final = """
    WITH done AS (
        UPDATE webhook_deliveries AS d SET status = 'succeeded', attempts = d.attempts + 1, last_status_code = s.code,
            last_error = NULL, delivered_at = now(), claimed_until = NULL, redeliver_requested = false
        FROM unnest($1::uuid[], $2::int[], $3::int[]) AS s(id, code, attempts)
        WHERE d.id = s.id AND d.status = 'pending' AND d.attempts = s.attempts
        RETURNING d.endpoint_id
    )
    UPDATE webhook_endpoints AS w SET consecutive_failures = 0
    FROM (SELECT DISTINCT endpoint_id FROM done) AS e WHERE w.id = e.endpoint_id AND w.consecutive_failures <> 0
"""
_RECORD_FAILURE: Final = """
    UPDATE webhook_deliveries SET attempts = attempts + 1, last_status_code = $2, last_error = $3,
        claimed_until = NULL, redeliver_requested = false,
        status = CASE WHEN attempts + 1 >= attempt_limit THEN 'failed' ELSE 'pending' END,
        next_attempt_at = CASE WHEN attempts + 1 >= attempt_limit THEN next_attempt_at
                               ELSE now() + make_interval(secs => $4) END
    WHERE id = $1 AND status = 'pending' AND attempts = $5
    RETURNING endpoint_id, status
"""
#: A delivery failed for good: count it, and trip the breaker at the limit (returns whether this call tripped it).
_COUNT_FAILURE: Final = """
    WITH old AS (SELECT id, is_active FROM webhook_endpoints WHERE id = $1 FOR UPDATE)
    UPDATE webhook_endpoints AS w SET
        consecutive_failures = w.consecutive_failures + 1,
        is_active = w.is_active AND w.consecutive_failures + 1 < $2,
        disabled_reason = CASE WHEN w.is_active AND w.consecutive_failures + 1 >= $2 THEN $3 ELSE w.disabled_reason END
    FROM old WHERE w.id = old.id
    RETURNING old.is_active AND NOT w.is_active AS tripped, w.consecutive_failures
"""
_DISABLED_NOTICE: Final = """
    SELECT w.url, w.description, w.disabled_reason, w.is_active,
           array(SELECT DISTINCT u.email FROM users AS u
                 JOIN user_roles AS ur ON ur.user_id = u.id JOIN roles AS r ON r.name = ur.role_name
                 WHERE u.is_active AND 'webhooks:manage' = ANY(r.permissions) ORDER BY u.email) AS admins
    FROM webhook_endpoints AS w WHERE w.id = $1
"""


# ------------------------------------------------------------------------------------------------------ resources


def _delivery_client(policy: TargetPolicy) -> DeliveryClient:
    # Imported here: only the process that sends webhooks needs httpx (see app.events.webhook_client).
    from app.events.webhook_client import DeliveryClient

    return DeliveryClient(policy)


@dataclass
class WebhookResources:
    """What the webhook queue's jobs need; built when its worker starts, closed when it stops."""

    settings: Settings
    pool: DirectPool
    client: DeliveryClient
    sender: EmailSender
    pump: WebhookPump | None = field(default=None)


def message_body(event: OrderEventRead) -> bytes:
    """``{"type", "timestamp", "data"}`` with ``data`` the event as WebSocket listeners receive it."""
    return msgspec.json.encode(WebhookMessage(type=cast("EventType", event.type), timestamp=event.at, data=event))


def _event_of(row: Any) -> OrderEventRead:
    # Every column of the event row, as JSON: the public event takes the fields it declares.
    return msgspec.convert(row["event"], OrderEventRead, strict=False)


async def deliver_webhooks(ctx: Context, *, deliveries: list[tuple[str, int]]) -> dict[str, Any]:
    """One attempt of each delivery (``(id, attempts made)``) still pending, all at once; records each outcome.

    Successes are recorded together in one statement once every attempt of the job has ended (10 s at most);
    failures one by one, since each may end the delivery and trip the endpoint's breaker.
    """
    resources: WebhookResources = ctx["webhooks"]  # type: ignore[typeddict-item]
    expected = {uuid.UUID(delivery_id): attempts for delivery_id, attempts in deliveries}
    rows = await resources.pool.pool.fetch(_LOAD, list(expected))
    rows = [row for row in rows if expected.get(row["id"]) == row["attempts"]]
    # Whatever error message or traceback might carry a secret from here on, the log line shows [REDACTED].
    register_secrets(*(row["secret"] for row in rows), *(row["previous_secret"] for row in rows))
    results = await asyncio.gather(*(_attempt(resources, row) for row in rows))
    succeeded = [(row, result) for row, result in zip(rows, results, strict=True) if result.succeeded]
    if succeeded:
        await resources.pool.pool.execute(
            _RECORD_SUCCESSES,
            [row["id"] for row, _ in succeeded],
            [result.status_code for _, result in succeeded],
            [row["attempts"] for row, _ in succeeded],
        )
    for row, result in zip(rows, results, strict=True):
        if not result.succeeded:
            await _record_failure(resources, row["id"], row["attempts"], result)
    return {"succeeded": len(succeeded), "failed": len(rows) - len(succeeded), "skipped": len(expected) - len(rows)}


async def _attempt(resources: WebhookResources, row: Any) -> AttemptResult:
    secrets_in_use = [row["secret"], *([row["previous_secret"]] if row["previous_secret"] else [])]
    return await resources.client.attempt(row["url"], str(row["id"]), secrets_in_use, message_body(_event_of(row)))


async def _record_failure(
    resources: WebhookResources, delivery_id: uuid.UUID, attempts: int, result: AttemptResult
) -> None:
    """Record a failed attempt (unless someone recorded it first); on a final failure, count it for the breaker."""
    settings = resources.settings
    logger.info("webhook_attempt_failed", delivery_id=str(delivery_id), attempt=attempts + 1, error=result.error)
    delay = retry_delay(settings.webhook_retry_delay, attempts + 1)
    async with resources.pool.pool.acquire() as connection, connection.transaction():
        recorded = await connection.fetchrow(
            _RECORD_FAILURE, delivery_id, result.status_code, result.error, delay, attempts
        )
        if recorded is None or recorded["status"] != "failed":
            return
        reason = f"{settings.webhook_disable_after} deliveries in a row failed for good (last: {result.error})"
        counted = await connection.fetchrow(
            _COUNT_FAILURE, recorded["endpoint_id"], settings.webhook_disable_after, reason[:500]
        )
    if counted is not None and counted["tripped"]:
        endpoint_id = str(recorded["endpoint_id"])
        logger.warning("webhook_endpoint_disabled", endpoint_id=endpoint_id)
        assert resources.pump is not None
        await resources.pump.queue.enqueue(
            DISABLED_EMAIL_JOB,
            key=f"webhook-disabled:{endpoint_id}:{delivery_id}",
            timeout=60,
            retries=settings.email_max_attempts,
            retry_delay=settings.email_retry_delay,
            retry_backoff=settings.email_retry_backoff,
            endpoint_id=endpoint_id,
        )


async def email_webhook_disabled(ctx: Context, *, endpoint_id: str) -> dict[str, Any]:
    """Tell every active admin (holder of ``webhooks:manage``) that the circuit breaker deactivated an endpoint."""
    resources: WebhookResources = ctx["webhooks"]  # type: ignore[typeddict-item]
    row = await resources.pool.pool.fetchrow(_DISABLED_NOTICE, uuid.UUID(endpoint_id))
    if row is None or row["is_active"]:
        return {"sent": 0}  # deleted or re-activated meanwhile
    name = f"{row['url']}" + (f" ({row['description']})" if row["description"] else "")
    text = (
        f"The webhook endpoint {name} was deactivated: {row['disabled_reason']}.\n\n"
        f"Fix the receiver, then re-activate it with PATCH /admin/webhooks/{endpoint_id} "
        '{"is_active": true}. Deliveries that failed can be sent again with .../redeliver.\n'
    )
    html = "<p>" + text.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>") + "</p>"
    for admin in row["admins"]:
        await resources.sender.send(
            OutgoingEmail(to=admin, subject="Webhook endpoint deactivated", text=text, html=html)
        )
    return {"sent": len(row["admins"])}


# ------------------------------------------------------------------------------------------------------ the pump


class WebhookPump(BackgroundLoop):
    """Creates deliveries from new events and hands due ones to jobs (see the module docstring, steps 1 and 2)."""

    def __init__(self, pool: DirectPool, queue: Queue, settings: Settings, *, interval: float = PUMP_INTERVAL) -> None:
        super().__init__("webhook-pump")
        self._pool = pool
        self.queue = queue
        self._settings = settings
        self._interval = interval
        #: Webhook jobs allowed at once (queued or running), adapted to the loop's lag: halved when the loop lags,
        #: one more when it does not, between 1 and WEBHOOK_CONCURRENCY.
        self.job_budget = WEBHOOK_CONCURRENCY

    def adapt(self, lag: float) -> None:
        if lag > LAG_LIMIT_S:
            self.job_budget = max(1, self.job_budget // 2)
        else:
            self.job_budget = min(WEBHOOK_CONCURRENCY, self.job_budget + 1)

    async def pump(self) -> tuple[int, int]:
        """One pass: ``(deliveries created, deliveries handed to jobs)``."""
        pool = self._pool.pool
        created = int(await pool.fetchval(_FAN_OUT, self._settings.webhook_max_attempts, FAN_OUT_STEP) or 0)
        room = min(MAX_QUEUED_JOBS, self.job_budget) - await self.queue.count("incomplete")
        if room <= 0:
            return created, 0
        claimed = await pool.fetch(_CLAIM, min(CLAIM_BATCH, room * JOB_BATCH), CLAIM_S)
        if not claimed:
            return created, 0
        try:
            await self._enqueue([(str(row["id"]), int(row["attempts"])) for row in claimed])
        except BaseException:
            with contextlib.suppress(Exception):
                await pool.execute(_RELEASE, [row["id"] for row in claimed])
            raise
        return created, len(claimed)

    async def _enqueue(self, deliveries: list[tuple[str, int]]) -> None:
        batches = [deliveries[i : i + JOB_BATCH] for i in range(0, len(deliveries), JOB_BATCH)]
        await asyncio.gather(
            *(
                self.queue.enqueue(
                    DELIVER_JOB,
                    # Keyed by its first delivery and attempt: a repeat while it is queued or running is a no-op.
                    key=f"webhooks:{batch[0][0]}:{batch[0][1]}",
                    timeout=JOB_TIMEOUT_S,
                    retries=1,
                    deliveries=batch,
                )
                for batch in batches
            )
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            try:
                await self.pump()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - keep pumping through database or Redis outages
                failures += 1
                logger.warning("webhook_pump_failed", error=type(exc).__name__, attempt=failures)
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))
                continue
            before = loop.time()
            await asyncio.sleep(self._interval)
            self.adapt(loop.time() - before - self._interval)


# ------------------------------------------------------------------------------------------------------ the queue


class WebhookWorker:
    """The ``webhooks`` queue's SAQ worker and the pump: in a process of its own (:class:`WebhookProcess`), or in
    the orders worker's event loop when that runs inside the API process.

    A queue of its own, so a slow receiver occupies webhook job slots (``WEBHOOK_CONCURRENCY``), never the email
    queue's. Not a second litestar-saq queue config: ``litestar workers run`` would fork a child process per extra
    queue, which outlives a parent that is killed. The orders worker starts and stops this one (or the process that
    runs it) from its own startup and shutdown hooks (see :func:`webhook_runner`).
    """

    def __init__(self, settings: Settings) -> None:
        assert settings.redis_url is not None
        assert settings.database_url is not None
        self._settings = settings
        self.queue = Queue.from_url(settings.redis_url, name=WEBHOOK_QUEUE)
        policy = TargetPolicy(
            allow_private=settings.webhook_allow_private, allow_insecure=settings.webhook_allow_insecure
        )
        self.resources = WebhookResources(
            settings=settings,
            pool=DirectPool(settings.database_url, size=4, pool_mode=settings.db_pool_mode),
            client=_delivery_client(policy),
            sender=email_sender_for(settings),
        )
        self._worker = Worker(
            self.queue,
            functions=[deliver_webhooks, email_webhook_disabled],
            concurrency=WEBHOOK_CONCURRENCY,
            startup=[self._provide],
        )
        self._worker.SIGNALS = []  # the orders worker owns the process's signals and stops this one
        PromptStop(self._worker, grace=STOP_GRACE_S).install()  # running attempts finish, idle loops don't
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Future[None] | None = None

    async def _provide(self, ctx: Context) -> None:
        ctx["webhooks"] = self.resources  # type: ignore[typeddict-unknown-key]

    async def start(self) -> None:
        await self.queue.connect()
        await self.resources.pool.open()
        self.resources.pump = WebhookPump(self.resources.pool, self.queue, self._settings)
        self.resources.pump.start()
        self._task = asyncio.create_task(self._worker.start(), name="webhook-worker")

    async def stop(self) -> None:
        """Stop taking jobs, let running attempts finish (up to their 10 s), then close everything.

        Safe to call more than once, also while a stop is under way: every caller waits for the one stop. The orders
        worker's shutdown hook calls it, and so does the app's lifespan after that worker's stop, in case that stop
        timed out or failed before its hooks ran (an in-process webhook worker left running would take jobs for an
        app that is gone).
        """
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if self.resources.pump is not None:
            await self.resources.pump.stop()
        await self._worker.stop()
        if self._task is not None:
            await cancel_and_wait(self._task)
        await self.resources.client.aclose()
        await self.resources.pool.close()
        await self.queue.disconnect()


# ------------------------------------------------------------------------------------------------------ own process

#: How often the webhook process checks that the worker that started it is still alive.
PARENT_CHECK_S: Final = 0.5
#: The webhook process's CPU priority relative to the API and the orders worker (0: equal; 19: lowest).
WEBHOOK_NICENESS: Final = 10
#: How long the worker waits for the webhook process to finish its running attempts (10 s each) when it stops.
STOP_WAIT_S: Final = ATTEMPT_TIMEOUT_S + 5


class WebhookProcess:
    """The webhook worker in a process of its own, started and stopped by the orders worker's process.

    Why: in the orders worker's event loop, webhook requests (a few ms of CPU each in httpx) delayed the outbox
    dispatch and the email jobs — with 10 endpoints and 1,000 orders, +68 % on WebSocket events and +178 % on emails
    (README, Webhooks). In a process of its own they share the machine's cores, not one loop and one GIL.

    Safe to leave running: a child started with ``spawn`` (no copy of the parent's loop, sockets or threads), which
    checks every ``PARENT_CHECK_S`` that its parent is still the process that started it and stops by itself when
    it is not (a parent killed with SIGKILL gets no chance to stop it). SIGTERM or SIGINT stop it the same way: no
    new jobs, running attempts finish (10 s at most), connections closed. Deliveries live in the database, so a
    child that dies anyway loses nothing: its claims lapse and the next pump takes them again.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._process: multiprocessing.process.BaseProcess | None = None

    async def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._process = context.Process(
            target=run_webhook_process, args=(self._settings, os.getpid()), name="webhooks", daemon=True
        )
        self._process.start()
        logger.info("webhook_process_started", pid=self._process.pid)

    async def stop(self) -> None:
        process = self._process
        if process is None or not process.is_alive():
            return
        process.terminate()
        await asyncio.to_thread(process.join, STOP_WAIT_S)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, 5)


def run_webhook_process(settings: Settings, parent_pid: int) -> None:
    """The webhook process's entry point (see :class:`WebhookProcess`)."""
    configure_logging(settings.log_level, settings.secret_values())
    # Webhooks may lag; order requests, WebSocket events and emails may not: on a busy machine the scheduler gives
    # this process's CPU time to the others first (niceness 10 gets ~1/10 the share of a niceness-0 process).
    os.nice(WEBHOOK_NICENESS)
    uvloop.run(_serve(settings, parent_pid))  # as app.cli's commands: socket I/O (PostgreSQL, Redis, HTTP) in C


async def _serve(settings: Settings, parent_pid: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    worker = WebhookWorker(settings)
    await worker.start()
    logger.info("webhook_worker_started", parent=parent_pid)
    try:
        while not stop.is_set() and os.getppid() == parent_pid:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PARENT_CHECK_S)
    finally:
        await worker.stop()
        logger.info("webhook_worker_stopped", parent_alive=os.getppid() == parent_pid)


def webhook_runner(settings: Settings) -> WebhookWorker | WebhookProcess:
    """Where webhooks run: in a process of their own beside a worker process (``litestar workers run``); in the
    same event loop when the worker runs inside the API process (``WORKER_IN_PROCESS=true``: development, tests)."""
    return WebhookWorker(settings) if settings.worker_in_process else WebhookProcess(settings)
