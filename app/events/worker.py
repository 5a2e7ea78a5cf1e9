"""The SAQ worker: email jobs, the outbox dispatch loop, the payment timeout, and periodic upkeep.

Run it with ``uv run litestar workers run`` (its own process; any number of them), or inside the API process with
``WORKER_IN_PROCESS=true`` (the dev command does). Jobs open their own database sessions: a worker process never
runs the web app's lifespan.

Emails: the dispatcher hands each batch of events it published to one job (keyed by the batch's first event row,
so enqueueing it twice is a no-op). The job sends one email per event and records ``emailed_at`` for each message
the SMTP server accepted, so a retry sends only what is still missing, and no event is emailed twice in normal
operation. If any message failed the job fails and is retried with exponential backoff (``EMAIL_MAX_ATTEMPTS``);
one batch per dispatch round keeps the queue's per-job cost (enqueue, dequeue, bookkeeping — most of a worker's
time when it was one job per event) from growing with the order rate, while one unreachable mailbox delays only
the few events that were published with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from litestar_saq import CronJob, QueueConfig, SAQConfig, SAQPlugin
from prometheus_client import Gauge
from saq.types import Context
from sqlalchemy import BigInteger, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.logging import get_logger
from app.db.prepared import DirectPool, Prepared
from app.domain.accounts.models import User
from app.domain.accounts.services import SessionService
from app.domain.orders.models import IdempotencyKey, Order, OrderEvent
from app.domain.orders.schemas import format_usd
from app.domain.orders.services import lines_of
from app.events import account_emails
from app.events.email import EmailSender
from app.events.outbox import DispatchLoop, OutboxDispatcher
from app.events.payment_timeout import PaymentTimeoutLoop
from app.events.prompt_stop import PromptStop
from app.events.templates import EmailLine, OrderEmail, render_order_email
from app.events.webhooks import WebhookProcess, WebhookWorker, webhook_runner

__all__ = (
    "QUEUE_NAME",
    "WorkerResources",
    "email_enqueuer",
    "email_job_key",
    "purge_refresh_tokens",
    "saq_config",
    "send_order_emails",
    "stopping_promptly",
    "without_heartbeat_threads",
)

logger = get_logger("app.worker")

QUEUE_DEPTH = Gauge(
    "orders_queue_jobs", "Jobs in the task queue by state", ["queue", "state"], multiprocess_mode="livemax"
)

QUEUE_NAME: Final = "orders"
EMAIL_JOB: Final = "send_order_emails"
EMAIL_TIMEOUT_S: Final = 60


@dataclass
class WorkerResources:
    """What jobs need; built by ``create_app`` and handed to the worker through its startup hook."""

    settings: Settings
    session_maker: async_sessionmaker[AsyncSession]
    sender: EmailSender
    dispatcher: OutboxDispatcher
    pool: DirectPool
    dispatch_loop: DispatchLoop | None = field(default=None)
    payment_timeouts: PaymentTimeoutLoop | None = field(default=None)
    webhooks: WebhookWorker | WebhookProcess | None = field(default=None)


# --------------------------------------------------------------------------------------------------------- jobs

#: The events of a batch not emailed yet, each with what its email shows: one statement for the whole batch.
_EMAIL_EVENTS: Final = Prepared(
    select(
        OrderEvent.id,
        OrderEvent.type,
        OrderEvent.status,
        OrderEvent.previous_status,
        OrderEvent.reason,
        OrderEvent.order_id,
        Order.total_cents,
        Order.shipping_address,
        User.email,
        User.full_name,
        lines_of(OrderEvent.order_id),
    )
    .join(Order, Order.id == OrderEvent.order_id)
    .join(User, User.id == OrderEvent.user_id)
    .where(OrderEvent.id == func.any(bindparam("ids", type_=ARRAY(BigInteger))), OrderEvent.emailed_at.is_(None))
    .order_by(OrderEvent.id)
)
_MARK_EMAILED: Final = Prepared(
    update(OrderEvent)
    .where(OrderEvent.id == func.any(bindparam("ids", type_=ARRAY(BigInteger))), OrderEvent.emailed_at.is_(None))
    .values(emailed_at=bindparam("now"))
)


async def send_order_emails(ctx: Context, *, event_row_ids: list[int]) -> dict[str, Any]:
    """Email each event's order owner (confirmation or status change) — the events not emailed yet."""
    resources: WorkerResources = ctx["orders"]  # type: ignore[typeddict-item]
    emails = await _load_emails(resources.pool, event_row_ids)
    sent: list[int] = []
    failures: list[str] = []
    try:
        for row_id, email in emails:
            try:
                await resources.sender.send(render_order_email(email))
            except Exception as exc:  # noqa: BLE001 - the others still go out; the job fails and retries these
                failures.append(f"event row {row_id}: {type(exc).__name__}: {exc}")
            else:
                sent.append(row_id)
    finally:
        if sent:
            await _MARK_EMAILED.execute(resources.pool, ids=sent, now=datetime.now(UTC))
    if failures:
        raise EmailDeliveryError("; ".join(failures))
    return {"sent": len(sent), "skipped": len(event_row_ids) - len(emails)}


class EmailDeliveryError(Exception):
    """Some messages of a batch were not accepted; the job is retried and sends only those."""


async def sweep_outbox(ctx: Context) -> dict[str, Any]:
    """Cron safety net: dispatch anything the dispatch loops left behind (e.g. every worker was down a while)."""
    resources: WorkerResources = ctx["orders"]  # type: ignore[typeddict-item]
    return {"published": await resources.dispatcher.dispatch()}


async def purge_idempotency_keys(ctx: Context) -> dict[str, Any]:
    """Delete idempotency keys past their 24 h (expired keys are already ignored; this keeps the table small)."""
    resources: WorkerResources = ctx["orders"]  # type: ignore[typeddict-item]
    async with resources.session_maker() as session:
        result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < datetime.now(UTC)))
        await session.commit()
    return {"deleted": int(result.rowcount or 0)}  # type: ignore[attr-defined]


#: Rows per purge transaction, and transactions per run: at most 200,000 rows an hour, each batch a short transaction.
PURGE_BATCH: Final = 2000
PURGE_MAX_BATCHES: Final = 100


async def purge_refresh_tokens(ctx: Context) -> dict[str, Any]:
    """Delete ended sessions (revoked or expired) and expired refresh tokens, in bounded batches.

    Every refresh adds a row; without this the table would grow with every refresh for good.
    """
    resources: WorkerResources = ctx["orders"]  # type: ignore[typeddict-item]
    deleted_sessions = deleted_tokens = 0
    for _ in range(PURGE_MAX_BATCHES):
        async with resources.session_maker() as session:
            sessions, tokens = await SessionService(session=session).purge_ended(limit=PURGE_BATCH)
        deleted_sessions += sessions
        deleted_tokens += tokens
        if sessions < PURGE_BATCH and tokens < PURGE_BATCH:
            break
    return {"sessions": deleted_sessions, "tokens": deleted_tokens}


def _recipient_name(row: Any) -> str:
    return str(row["full_name"] or row["shipping_address"].get("recipient_name") or row["email"])


async def _load_emails(pool: DirectPool, event_row_ids: Sequence[int]) -> list[tuple[int, OrderEmail]]:
    """The emails still to send for these events."""
    return [
        (
            row["id"],
            OrderEmail(
                kind=row["type"],
                to=row["email"],
                recipient_name=_recipient_name(row),
                order_id=str(row["order_id"]),
                status=row["status"],
                previous_status=row["previous_status"],
                reason=row["reason"],
                lines=[
                    EmailLine(
                        name=name,
                        quantity=quantity,
                        unit_price=format_usd(price_cents),
                        line_total=format_usd(price_cents * quantity),
                    )
                    for _, _, name, quantity, price_cents in row["lines"] or ()
                ],
                total=format_usd(row["total_cents"]),
            ),
        )
        for row in await _EMAIL_EVENTS.fetch(pool, ids=list(event_row_ids))
    ]


# ------------------------------------------------------------------------------------------------ configuration


def without_heartbeat_threads(plugin: SAQPlugin) -> SAQPlugin:
    """Switch off litestar-saq's ``HeartbeatManager`` threads (call after the app is built).

    litestar-saq 0.8 starts that thread in every process that loads the app (API processes too), and it logs a
    crash whenever its loop is stopped at shutdown. It only serves jobs that set ``heartbeat``, which ours do not.
    The plugin has no option for it, and subclassing the plugin would hide it from ``litestar workers`` (which looks
    the plugin up by exact type), so the workers it built are adjusted instead.
    """
    for worker in plugin.get_workers().values():
        # Private attribute (pinned, checked by tests/unit/test_private_apis.py); no upstream issue yet.
        worker._enable_heartbeat_manager = False
    return plugin


def stopping_promptly(plugin: SAQPlugin, *, grace: float) -> SAQPlugin:
    """Each worker stops taking jobs the moment it is told to stop, and stops once its running jobs are done, within
    ``grace`` seconds (:class:`~app.events.prompt_stop.PromptStop`; call after the app is built)."""
    for worker in plugin.get_workers().values():
        PromptStop(worker, grace=grace).install()
    return plugin


def saq_config(settings: Settings, get_resources: Callable[[], WorkerResources]) -> SAQConfig:
    """A fresh SAQ config per app (SAQ caches queues, and their Redis pools, on the config object).

    ``get_resources`` is called when a worker starts: the resources need the queue (to enqueue emails), so they are
    built after this config.
    """
    assert settings.redis_url is not None

    async def startup(ctx: Context) -> None:
        resources = get_resources()
        ctx["orders"] = resources  # type: ignore[typeddict-unknown-key]
        await resources.pool.open()
        resources.dispatch_loop = DispatchLoop(resources.dispatcher)
        resources.dispatch_loop.start()
        if settings.order_payment_ttl:  # 0: pending orders wait for payment forever
            resources.payment_timeouts = PaymentTimeoutLoop(
                resources.pool,
                resources.session_maker,
                ttl=settings.order_payment_ttl,
                interval=settings.payment_expiry_interval,
                rate=settings.payment_expiry_rate,
            )
            resources.payment_timeouts.start()
        resources.webhooks = webhook_runner(settings)
        await resources.webhooks.start()
        logger.info("worker_started", queue=QUEUE_NAME, in_process=settings.worker_in_process)

    async def shutdown(_: Context) -> None:
        resources = get_resources()
        if resources.dispatch_loop is not None:
            await resources.dispatch_loop.stop()
        if resources.payment_timeouts is not None:
            await resources.payment_timeouts.stop()
        if resources.webhooks is not None:
            await resources.webhooks.stop()
        await resources.pool.close()

    return SAQConfig(
        queue_configs=[
            QueueConfig(
                name=QUEUE_NAME,
                dsn=settings.redis_url,
                tasks=[
                    send_order_emails,
                    sweep_outbox,
                    purge_idempotency_keys,
                    purge_refresh_tokens,
                    *account_emails.TASKS,
                ],
                scheduled_tasks=[
                    CronJob(function=sweep_outbox, cron="* * * * *", timeout=60),
                    CronJob(function=purge_idempotency_keys, cron="17 * * * *", timeout=300),
                    CronJob(function=purge_refresh_tokens, cron="23 * * * *", timeout=300),
                    *account_emails.SCHEDULED_TASKS,
                ],
                startup=[startup, account_emails.start_account_email_relay],
                shutdown=[account_emails.stop_account_email_relay, shutdown],
                concurrency=settings.worker_concurrency,
                separate_process=not settings.worker_in_process,
                # On SIGTERM, SAQ stops starting jobs and waits this long for the running ones (its default, 0,
                # cancels them at once and retries them, which can send again an email that was mid-send).
                shutdown_grace_period_s=settings.worker_shutdown_grace_seconds,
            )
        ],
        use_server_lifespan=False,
        web_enabled=False,
    )


def email_job_key(event_row_ids: Sequence[int]) -> str:
    """The SAQ job key of a batch's emails: while such a job is queued or running, enqueueing it again is a no-op.

    A batch is the events of one dispatch round; its first event row belongs to no other batch.
    """
    return f"order-emails:{min(event_row_ids)}"


def email_enqueuer(config: SAQConfig, settings: Settings) -> Callable[[Sequence[int]], Awaitable[None]]:
    """``enqueue_emails(row_ids)`` for the dispatcher: one keyed job for the batch."""

    async def enqueue_emails(row_ids: Sequence[int]) -> None:
        queue = config.get_queues().get(QUEUE_NAME)
        await queue.enqueue(
            EMAIL_JOB,
            key=email_job_key(row_ids),
            timeout=EMAIL_TIMEOUT_S,
            retries=settings.email_max_attempts,
            retry_delay=settings.email_retry_delay,
            retry_backoff=settings.email_retry_backoff,
            event_row_ids=list(row_ids),
        )

    return enqueue_emails


def queue_depth_refresher(config: SAQConfig) -> Callable[[], Awaitable[None]]:
    """Updates the queue-depth gauge (for ``/metrics``) from Redis."""

    async def refresh() -> None:
        queue = config.get_queues().get(QUEUE_NAME)
        for state in ("queued", "active", "incomplete"):
            QUEUE_DEPTH.labels(queue=QUEUE_NAME, state=state).set(await queue.count(state))

    return refresh
