"""The SAQ worker: email jobs, the outbox dispatch loop, and periodic upkeep.

Run it with ``uv run litestar workers run`` (its own process; any number of them), or inside the API process with
``WORKER_IN_PROCESS=true`` (the dev command does). Jobs open their own database sessions: a worker process never
runs the web app's lifespan.

Emails are retried with exponential backoff (``EMAIL_MAX_ATTEMPTS`` attempts). Each event's email job is keyed by
the event row, and the job records ``emailed_at`` after the SMTP server accepted the message, so neither a repeated
enqueue nor a retry after a crash sends the same email twice in normal operation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from litestar_saq import CronJob, QueueConfig, SAQConfig, SAQPlugin
from prometheus_client import Gauge
from saq.types import Context
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.logging import get_logger
from app.db.urls import asyncpg_dsn
from app.domain.accounts.models import User
from app.domain.orders.models import IdempotencyKey, Order, OrderEvent, OrderItem
from app.domain.orders.schemas import format_usd
from app.events.email import EmailSender
from app.events.outbox import DispatchLoop, OutboxDispatcher
from app.events.templates import EmailLine, OrderEmail, render_order_email

__all__ = ("QUEUE_NAME", "WorkerResources", "asyncpg_dsn", "email_enqueuer", "saq_config", "without_heartbeat_threads")

logger = get_logger("app.worker")

QUEUE_DEPTH = Gauge(
    "orders_queue_jobs", "Jobs in the task queue by state", ["queue", "state"], multiprocess_mode="livemax"
)

QUEUE_NAME: Final = "orders"
EMAIL_JOB: Final = "send_order_email"
EMAIL_TIMEOUT_S: Final = 30


@dataclass
class WorkerResources:
    """What jobs need; built by ``create_app`` and handed to the worker through its startup hook."""

    settings: Settings
    session_maker: async_sessionmaker[AsyncSession]
    sender: EmailSender
    dispatcher: OutboxDispatcher
    dispatch_loop: DispatchLoop | None = field(default=None)


# --------------------------------------------------------------------------------------------------------- jobs


async def send_order_email(ctx: Context, *, event_row_id: int) -> dict[str, Any]:
    """Email the order's owner about one event (confirmation or status change), once."""
    resources: WorkerResources = ctx["orders"]  # type: ignore[typeddict-item]
    async with resources.session_maker() as session:
        email = await _load_email(session, event_row_id)
        if email is None:
            return {"skipped": "already sent or unknown event"}
        await resources.sender.send(render_order_email(email))
        await session.execute(
            update(OrderEvent)
            .where(OrderEvent.id == event_row_id, OrderEvent.emailed_at.is_(None))
            .values(emailed_at=datetime.now(UTC))
        )
        await session.commit()
    return {"sent": email.kind, "to": email.to, "order_id": email.order_id}


async def sweep_outbox(ctx: Context) -> dict[str, Any]:
    """Cron safety net: dispatch anything the listener left behind (e.g. every worker was down for a while)."""
    resources: WorkerResources = ctx["orders"]  # type: ignore[typeddict-item]
    return {"published": await resources.dispatcher.dispatch()}


async def purge_idempotency_keys(ctx: Context) -> dict[str, Any]:
    """Delete idempotency keys past their 24 h (expired keys are already ignored; this keeps the table small)."""
    resources: WorkerResources = ctx["orders"]  # type: ignore[typeddict-item]
    async with resources.session_maker() as session:
        result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < datetime.now(UTC)))
        await session.commit()
    return {"deleted": int(result.rowcount or 0)}  # type: ignore[attr-defined]


async def _load_email(session: AsyncSession, event_row_id: int) -> OrderEmail | None:
    row = (
        await session.execute(
            select(
                OrderEvent.type,
                OrderEvent.status,
                OrderEvent.previous_status,
                OrderEvent.order_id,
                OrderEvent.emailed_at,
                Order.total_cents,
                Order.shipping_address,
                User.email,
                User.full_name,
            )
            .join(Order, Order.id == OrderEvent.order_id)
            .join(User, User.id == OrderEvent.user_id)
            .where(OrderEvent.id == event_row_id)
        )
    ).first()
    if row is None or row.emailed_at is not None:
        return None
    items = await session.execute(
        select(OrderItem.product_name, OrderItem.quantity, OrderItem.price_cents)
        .where(OrderItem.order_id == row.order_id)
        .order_by(OrderItem.id)
    )
    return OrderEmail(
        kind=row.type,
        to=row.email,
        recipient_name=row.full_name or str(row.shipping_address.get("recipient_name", "")) or row.email,
        order_id=str(row.order_id),
        status=row.status,
        previous_status=row.previous_status,
        lines=[
            EmailLine(
                name=item.product_name,
                quantity=item.quantity,
                unit_price=format_usd(item.price_cents),
                line_total=format_usd(item.price_cents * item.quantity),
            )
            for item in items
        ],
        total=format_usd(row.total_cents),
    )


# ------------------------------------------------------------------------------------------------ configuration


def without_heartbeat_threads(plugin: SAQPlugin) -> SAQPlugin:
    """Switch off litestar-saq's ``HeartbeatManager`` threads (call after the app is built).

    litestar-saq 0.8 starts that thread in every process that loads the app (API processes too), and it logs a
    crash whenever its loop is stopped at shutdown. It only serves jobs that set ``heartbeat``, which ours do not.
    The plugin has no option for it, and subclassing the plugin would hide it from ``litestar workers`` (which looks
    the plugin up by exact type), so the workers it built are adjusted instead.
    """
    for worker in plugin.get_workers().values():
        worker._enable_heartbeat_manager = False
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
        assert settings.database_url is not None
        resources.dispatch_loop = DispatchLoop(resources.dispatcher, asyncpg_dsn(settings.database_url))
        resources.dispatch_loop.start()
        logger.info("worker_started", queue=QUEUE_NAME, in_process=settings.worker_in_process)

    async def shutdown(_: Context) -> None:
        resources = get_resources()
        if resources.dispatch_loop is not None:
            await resources.dispatch_loop.stop()

    return SAQConfig(
        queue_configs=[
            QueueConfig(
                name=QUEUE_NAME,
                dsn=settings.redis_url,
                tasks=[send_order_email, sweep_outbox, purge_idempotency_keys],
                scheduled_tasks=[
                    CronJob(function=sweep_outbox, cron="* * * * *", timeout=60),
                    CronJob(function=purge_idempotency_keys, cron="17 * * * *", timeout=300),
                ],
                startup=[startup],
                shutdown=[shutdown],
                concurrency=settings.worker_concurrency,
                separate_process=not settings.worker_in_process,
            )
        ],
        use_server_lifespan=False,
        web_enabled=False,
    )


def email_enqueuer(config: SAQConfig, settings: Settings) -> Callable[[Sequence[int]], Awaitable[None]]:
    """``enqueue_emails(row_ids)`` for the dispatcher: one keyed job per event row."""

    async def enqueue_emails(row_ids: Sequence[int]) -> None:
        queue = config.get_queues().get(QUEUE_NAME)
        await asyncio.gather(
            *(
                queue.enqueue(
                    EMAIL_JOB,
                    key=f"order-email:{row_id}",
                    timeout=EMAIL_TIMEOUT_S,
                    retries=settings.email_max_attempts,
                    retry_delay=settings.email_retry_delay,
                    retry_backoff=settings.email_retry_backoff,
                    event_row_id=row_id,
                )
                for row_id in row_ids
            )
        )

    return enqueue_emails


def queue_depth_refresher(config: SAQConfig) -> Callable[[], Awaitable[None]]:
    """Updates the queue-depth gauge (for ``/metrics``) from Redis."""

    async def refresh() -> None:
        queue = config.get_queues().get(QUEUE_NAME)
        for state in ("queued", "active", "incomplete"):
            QUEUE_DEPTH.labels(queue=QUEUE_NAME, state=state).set(await queue.count(state))

    return refresh
