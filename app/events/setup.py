"""Wiring of the event side of the app: outbox dispatcher, SAQ worker, channels, WebSocket feeds."""

from __future__ import annotations

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
from app.events.email import email_sender_for
from app.events.live import LiveConnections, ResilientRedisPubSubBackend, admin_order_feed, order_feed
from app.events.outbox import OutboxDispatcher
from app.events.worker import WorkerResources, email_enqueuer, queue_depth_refresher, saq_config

__all__ = ("EventComponents", "build_event_components")


@dataclass
class EventComponents:
    dispatcher: OutboxDispatcher
    saq_plugin: SAQPlugin
    channels: ChannelsPlugin
    live: LiveConnections
    route_handlers: list[ControllerRouterHandler] = field(default_factory=lambda: [order_feed, admin_order_feed])
    dependencies: dict[str, Provide] = field(default_factory=dict)

    @asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        await self.live.start()
        try:
            yield
        finally:
            await self.live.stop()


def build_event_components(
    settings: Settings,
    alchemy: SQLAlchemyAsyncConfig,
    redis: Redis,
    session_maker: Callable[[], async_sessionmaker[AsyncSession]],
) -> EventComponents:
    """``session_maker`` is read on each use (tests point the app at a per-test transaction in app state)."""
    resources: list[WorkerResources] = []
    saq = saq_config(settings, lambda: resources[0])
    dispatcher = OutboxDispatcher(alchemy.get_engine(), redis, email_enqueuer(saq, settings))
    resources.append(
        WorkerResources(
            settings=settings,
            session_maker=alchemy.create_session_maker(),  # type: ignore[arg-type]
            sender=email_sender_for(settings),
            dispatcher=dispatcher,
        )
    )
    live = LiveConnections(session_maker, interval=settings.live_check_interval)

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
        dependencies={
            "outbox": constant(dispatcher),
            "refresh_metrics": constant(queue_depth_refresher(saq)),
            "live": constant(live),
            "session_maker": Provide(session_maker, sync_to_thread=False),
        },
    )
