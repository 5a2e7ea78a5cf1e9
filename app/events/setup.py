"""Wiring of the event side of the app: outbox dispatcher, SAQ worker, channels, WebSocket feeds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.di import Provide
from litestar.types import ControllerRouterHandler
from litestar_saq import SAQPlugin
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.logging import get_logger
from app.db.prepared import DirectPool
from app.db.providers import provide_service
from app.events.admin import JobsController, JobsService
from app.events.email import email_sender_for
from app.events.live import LiveConnections, ResilientRedisPubSubBackend, admin_order_feed, order_feed
from app.events.outbox import OutboxDispatcher
from app.events.socket_leases import SocketLeases, lease_ttl
from app.events.webhooks import STOP_GRACE_S as WEBHOOK_STOP_GRACE_S
from app.events.worker import WorkerResources, email_enqueuer, queue_depth_refresher, saq_config

__all__ = ("EventComponents", "build_event_components", "stop_in_process_workers")


logger = get_logger("app.events")


@dataclass
class EventComponents:
    dispatcher: OutboxDispatcher
    saq_plugin: SAQPlugin
    channels: ChannelsPlugin
    live: LiveConnections
    worker_resources: WorkerResources
    route_handlers: list[ControllerRouterHandler] = field(
        default_factory=lambda: [order_feed, admin_order_feed, JobsController]
    )
    dependencies: dict[str, Provide] = field(default_factory=dict)

    @asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        await self.live.start()
        try:
            yield
        finally:
            await self.live.stop()
            await stop_in_process_workers(
                self.saq_plugin, grace=self.worker_resources.settings.worker_shutdown_grace_seconds
            )
            # The worker's shutdown hook stops its dispatch loop, payment sweep and webhook worker; if stopping the
            # worker timed out or failed, they would go on (dispatching, cancelling orders, taking webhook jobs with
            # this app's settings) for an app that is gone. Each stop is a no-op once done.
            resources = self.worker_resources
            if resources.dispatch_loop is not None:
                await resources.dispatch_loop.stop()
            if resources.payment_timeouts is not None:
                await resources.payment_timeouts.stop()
            if resources.webhooks is not None:
                await _within(asyncio.ensure_future(resources.webhooks.stop()), STOP_TIMEOUT_S + WEBHOOK_STOP_GRACE_S)


async def stop_in_process_workers(plugin: SAQPlugin, *, grace: float = 0.0) -> None:
    """Stop an in-process worker (``WORKER_IN_PROCESS``) and wait until it has, before the pools close.

    litestar-saq's own shutdown hook only schedules ``worker.stop()`` and returns, so the worker's dispatch loop and
    jobs would outlive the app (using a disposed engine) for a moment. And ``Worker.start()`` makes a fresh stop
    event when it begins, so a ``stop()`` that runs before the start task got going is forgotten and the worker runs
    on for good. Cancelling the start task covers both: cancelled before it ran, it never starts; cancelled later,
    its ``finally`` runs the full ``stop()`` (jobs, then our shutdown hook). Lifespan managers exit before shutdown
    hooks, so litestar-saq's own ``stop()`` then finds the worker stopped.
    """
    for worker in plugin.get_workers().values():
        if worker.separate_process:
            continue
        # Private attribute (pinned, checked by tests/unit/test_private_apis.py); no upstream issue yet.
        starting: asyncio.Task[None] | None = getattr(worker, "_saq_asyncio_tasks", None)
        if starting is not None and starting is not asyncio.current_task() and not starting.done():
            starting.cancel()
            await _within(starting, STOP_TIMEOUT_S + grace)
        # A no-op once start() stopped itself.
        await _within(asyncio.ensure_future(worker.stop()), STOP_TIMEOUT_S + grace)


#: How long shutdown waits for the in-process worker, beyond the grace its running jobs get
#: (``WORKER_SHUTDOWN_GRACE_SECONDS``), before it goes on without it (shutdown must never hang).
STOP_TIMEOUT_S = 10.0


async def _within(task: asyncio.Future[None], seconds: float) -> None:
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        logger.warning("worker_stop_timeout", seconds=seconds)
    elif not task.cancelled() and (error := task.exception()) is not None:
        logger.warning("worker_stop_failed", error=type(error).__name__)


def build_event_components(
    settings: Settings,
    alchemy: SQLAlchemyAsyncConfig,
    redis: Redis,
    session_maker: Callable[[], async_sessionmaker[AsyncSession]],
) -> EventComponents:
    """The event side of one app. ``session_maker`` gives the SQLAlchemy plugin's session maker on each use (made
    once per database config, on first use)."""
    assert settings.database_url is not None
    resources: list[WorkerResources] = []
    saq = saq_config(settings, lambda: resources[0])
    dispatcher = OutboxDispatcher(alchemy.get_engine(), redis, email_enqueuer(saq, settings))
    resources.append(
        WorkerResources(
            settings=settings,
            session_maker=alchemy.create_session_maker(),  # type: ignore[arg-type]
            sender=email_sender_for(settings),
            dispatcher=dispatcher,
            pool=DirectPool(settings.database_url, size=4, pool_mode=settings.db_pool_mode),
        )
    )
    live = LiveConnections(
        session_maker,
        SocketLeases(redis, limit=settings.ws_max_per_user, ttl=lease_ttl(settings.live_check_interval)),
        interval=settings.live_check_interval,
    )

    def constant(value: Any) -> Provide:
        return Provide(lambda: value, use_cache=True, sync_to_thread=False)

    return EventComponents(
        dispatcher=dispatcher,
        saq_plugin=SAQPlugin(saq),
        channels=ChannelsPlugin(
            backend=ResilientRedisPubSubBackend(redis=redis),
            arbitrary_channels_allowed=True,
            subscriber_max_backlog=1000,
            subscriber_backlog_strategy="dropleft",
        ),
        live=live,
        worker_resources=resources[0],
        dependencies={
            "settle_events": constant(dispatcher.settle),
            "jobs": provide_service(JobsService),
            "event_channels": constant(dispatcher.channels),
            "refresh_metrics": constant(queue_depth_refresher(saq)),
            "live": constant(live),
            "session_maker": Provide(session_maker, sync_to_thread=False),
        },
    )
