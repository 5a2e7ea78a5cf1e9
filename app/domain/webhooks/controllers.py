"""Routes of ``/admin/webhooks`` (permission ``webhooks:manage``)."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from app.core.auth import requires_permission
from app.core.openapi import problems
from app.core.pagination import Page, PageNumber, PageParams, PerPage
from app.core.permissions import WEBHOOKS_MANAGE
from app.domain.webhooks.schemas import (
    DeliveryRead,
    EndpointCreate,
    EndpointRead,
    EndpointUpdate,
    EndpointWithSecret,
)
from app.domain.webhooks.services import WebhookService
from app.domain.webhooks.targets import TargetPolicy

__all__ = ("WebhookController",)


class WebhookController(Controller):
    path = "/admin/webhooks"
    tags = ["webhooks"]
    guards = [requires_permission(WEBHOOKS_MANAGE)]

    @post("/", status_code=HTTP_201_CREATED, responses=problems(401, 403, 413, 422))
    async def create_endpoint(
        self,
        data: JSONBody[EndpointCreate],
        webhooks: NamedDependency[WebhookService],
        webhook_targets: NamedDependency[TargetPolicy],
    ) -> EndpointWithSecret:
        """Subscribe a URL to order events. The answer holds the signing ``secret``: it is never shown again.

        A host that is or resolves to a non-public address → 422 ``webhook_target_forbidden``.
        """
        return await webhooks.create_endpoint(data, webhook_targets)

    @get("/", responses=problems(401, 403))
    async def list_endpoints(self, webhooks: NamedDependency[WebhookService]) -> list[EndpointRead]:
        """Every endpoint, newest first, without secrets."""
        return await webhooks.list_endpoints()

    @get("/{endpoint_id:uuid}", responses=problems(401, 403, 404))
    async def get_endpoint(
        self, endpoint_id: FromPath[uuid.UUID], webhooks: NamedDependency[WebhookService]
    ) -> EndpointRead:
        """One endpoint, without its secret."""
        return await webhooks.read_endpoint(endpoint_id)

    @patch("/{endpoint_id:uuid}", responses=problems(401, 403, 404, 413, 422))
    async def update_endpoint(
        self,
        endpoint_id: FromPath[uuid.UUID],
        data: JSONBody[EndpointUpdate],
        webhooks: NamedDependency[WebhookService],
        webhook_targets: NamedDependency[TargetPolicy],
    ) -> EndpointRead:
        """Change any subset of fields; ``is_active: true`` re-activates a disabled endpoint."""
        return await webhooks.update_endpoint(endpoint_id, data, webhook_targets)

    @delete("/{endpoint_id:uuid}", status_code=HTTP_204_NO_CONTENT, responses=problems(401, 403, 404))
    async def delete_endpoint(
        self, endpoint_id: FromPath[uuid.UUID], webhooks: NamedDependency[WebhookService]
    ) -> None:
        """Delete the endpoint and its delivery log."""
        await webhooks.delete_endpoint(endpoint_id)

    @post("/{endpoint_id:uuid}/rotate-secret", status_code=HTTP_200_OK, responses=problems(401, 403, 404))
    async def rotate_secret(
        self, endpoint_id: FromPath[uuid.UUID], webhooks: NamedDependency[WebhookService]
    ) -> EndpointWithSecret:
        """A new secret (in this answer only); for 24 h deliveries are signed with the old and the new one."""
        return await webhooks.rotate_secret(endpoint_id)

    @get("/{endpoint_id:uuid}/deliveries", responses=problems(401, 403, 404, 422))
    async def list_deliveries(
        self,
        endpoint_id: FromPath[uuid.UUID],
        webhooks: NamedDependency[WebhookService],
        page: PageNumber = 1,
        per_page: PerPage = 20,
    ) -> Page[DeliveryRead]:
        """The endpoint's deliveries, newest first."""
        return await webhooks.list_deliveries(endpoint_id, PageParams(page, per_page))

    @post(
        "/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/redeliver",
        status_code=HTTP_202_ACCEPTED,
        responses=problems(401, 403, 404),
    )
    async def redeliver(
        self,
        endpoint_id: FromPath[uuid.UUID],
        delivery_id: FromPath[uuid.UUID],
        webhooks: NamedDependency[WebhookService],
    ) -> None:
        """One more attempt of this delivery, now (also after it failed for good), with the same ``webhook-id``."""
        await webhooks.redeliver(endpoint_id, delivery_id)
