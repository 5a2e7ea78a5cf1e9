"""Managing webhook endpoints: subscribe, change, rotate secrets, read the delivery log, ask for a redelivery.

Sending is not done here: deliveries are created from committed events and sent by the worker
(``app.events.webhooks``); an admin request only writes rows, so it never waits for a receiver.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import case, func, select, update

from app.core.errors import DomainError, NotFound
from app.core.pagination import Page, PageParams
from app.db.services import Service
from app.domain.orders.models import OrderEvent
from app.domain.webhooks.models import WebhookDelivery, WebhookEndpoint
from app.domain.webhooks.schemas import (
    EVENT_TYPES,
    DeliveryRead,
    EndpointCreate,
    EndpointRead,
    EndpointUpdate,
    EndpointWithSecret,
)
from app.domain.webhooks.signing import new_secret
from app.domain.webhooks.targets import TargetPolicy, TargetRefused

__all__ = ("ROTATION_OVERLAP", "WebhookService")

#: How long a rotated-out secret keeps signing next to the new one, so receivers can switch without a gap.
ROTATION_OVERLAP: Final = timedelta(hours=24)

_DELIVERY_COLUMNS: Final = (
    WebhookDelivery.id,
    WebhookDelivery.event_id,
    WebhookDelivery.event_type,
    WebhookDelivery.status,
    WebhookDelivery.attempts,
    WebhookDelivery.last_status_code,
    WebhookDelivery.last_error,
    case((WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at), else_=None),
    WebhookDelivery.created_at,
    WebhookDelivery.delivered_at,
)


def _read(endpoint: WebhookEndpoint) -> EndpointRead:
    return EndpointRead(*(getattr(endpoint, name) for name in EndpointRead.__struct_fields__))


def _with_secret(endpoint: WebhookEndpoint) -> EndpointWithSecret:
    return EndpointWithSecret(*(getattr(endpoint, name) for name in EndpointWithSecret.__struct_fields__))


def _event_types(requested: list[str]) -> list[str]:
    return [t for t in EVENT_TYPES if t in requested]  # de-duplicated, in a fixed order


class WebhookService(Service[WebhookEndpoint]):
    class Repo(SQLAlchemyAsyncRepository[WebhookEndpoint]):
        model_type = WebhookEndpoint

    repository_type = Repo

    async def _check_target(self, url: str, policy: TargetPolicy) -> None:
        try:
            await policy.check_target(url)
        except TargetRefused as exc:
            raise DomainError("webhook_target_forbidden", f"Webhook target refused: {exc}") from None

    async def _head_event_id(self) -> int:
        """The newest public event id: a new or re-activated endpoint receives the events after it."""
        return int(await self.session.scalar(select(func.coalesce(func.max(OrderEvent.event_id), 0))) or 0)

    async def _get(self, endpoint_id: uuid.UUID, *, for_update: bool = False) -> WebhookEndpoint:
        endpoint = await self.repository.get_one_or_none(WebhookEndpoint.id == endpoint_id, with_for_update=for_update)
        if endpoint is None:
            raise NotFound("Webhook endpoint")
        return endpoint

    async def list_endpoints(self) -> list[EndpointRead]:
        """Every endpoint, newest first (an admin list: not paginated)."""
        endpoints = await self.repository.get_many(
            order_by=[(WebhookEndpoint.created_at, True), (WebhookEndpoint.id, True)]
        )
        return [_read(e) for e in endpoints]

    async def read_endpoint(self, endpoint_id: uuid.UUID) -> EndpointRead:
        return _read(await self._get(endpoint_id))

    async def create_endpoint(self, data: EndpointCreate, policy: TargetPolicy) -> EndpointWithSecret:
        """Subscribe ``data.url`` to the events committed from now on. The secret is in this answer and nowhere else.

        The target is checked first (422 ``webhook_target_forbidden`` for a non-public host), so a refused request
        writes nothing.
        """
        await self._check_target(data.url, policy)
        endpoint = WebhookEndpoint(
            url=data.url,
            event_types=_event_types(list(data.event_types)),
            description=data.description,
            is_active=True,
            secret=new_secret(),
            last_event_id=await self._head_event_id(),
            consecutive_failures=0,
        )
        self.session.add(endpoint)
        await self.session.flush()
        created = _with_secret(endpoint)
        await self.session.commit()
        return created

    async def update_endpoint(self, endpoint_id: uuid.UUID, data: EndpointUpdate, policy: TargetPolicy) -> EndpointRead:
        """Change any subset. Re-activating clears ``disabled_reason`` and the failure count, and starts again from
        the newest event (events committed while the endpoint was inactive are not sent)."""
        if data.url is not msgspec.UNSET:
            await self._check_target(data.url, policy)
        endpoint = await self._get(endpoint_id, for_update=True)
        if data.url is not msgspec.UNSET:
            endpoint.url = data.url
        if data.event_types is not msgspec.UNSET:
            endpoint.event_types = _event_types(list(data.event_types))
        if data.description is not msgspec.UNSET:
            endpoint.description = data.description
        if data.is_active is not msgspec.UNSET and data.is_active != endpoint.is_active:
            endpoint.is_active = data.is_active
            if data.is_active:
                endpoint.disabled_reason = None
                endpoint.consecutive_failures = 0
                endpoint.last_event_id = await self._head_event_id()
        await self.session.flush()
        updated = _read(endpoint)
        await self.session.commit()
        return updated

    async def delete_endpoint(self, endpoint_id: uuid.UUID) -> None:
        """Delete the endpoint and its delivery log; an attempt already in flight finds nothing to record."""
        endpoint = await self._get(endpoint_id, for_update=True)
        await self.session.delete(endpoint)
        await self.session.commit()

    async def rotate_secret(self, endpoint_id: uuid.UUID) -> EndpointWithSecret:
        """A new secret; the one it replaces keeps signing too for :data:`ROTATION_OVERLAP` (two signatures)."""
        endpoint = await self._get(endpoint_id, for_update=True)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_until = datetime.now(UTC) + ROTATION_OVERLAP
        endpoint.secret = new_secret()
        await self.session.flush()
        rotated = _with_secret(endpoint)
        await self.session.commit()
        return rotated

    async def list_deliveries(self, endpoint_id: uuid.UUID, paging: PageParams) -> Page[DeliveryRead]:
        """The endpoint's deliveries, newest first."""
        await self._get(endpoint_id)
        total = await self.session.scalar(
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        )
        rows = await self.session.execute(
            select(*_DELIVERY_COLUMNS)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.event_id.desc())
            .limit(paging.per_page)
            .offset(paging.offset)
        )
        return Page.of([DeliveryRead(*row) for row in rows], int(total or 0), paging)

    async def redeliver(self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> None:
        """Ask for one more attempt now, whatever the delivery's state (a failed one gets one attempt more).

        Only the row changes; the worker's next pass (every 100 ms) makes the attempt, also for an inactive
        endpoint. The ``webhook-id`` stays the same, so a receiver that already has the message can drop it.
        """
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id)
            .values(
                status="pending",
                next_attempt_at=func.now(),
                attempt_limit=func.greatest(
                    case(
                        (WebhookDelivery.status == "pending", WebhookDelivery.attempt_limit),
                        else_=0,
                    ),
                    WebhookDelivery.attempts + 1,
                ),
                redeliver_requested=True,
            )
            .returning(WebhookDelivery.id)
        )
        if result.first() is None:
            raise NotFound("Webhook delivery")
        await self.session.commit()
