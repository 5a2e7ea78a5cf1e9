"""Routes of ``/orders`` and ``/admin/orders``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, MediaType, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from app.core.auth import Principal, requires_permission
from app.core.openapi import problems
from app.core.pagination import Page, PageNumber, PageParams, PerPage
from app.core.permissions import ORDERS_MANAGE
from app.domain.orders.schemas import OrderCreate, OrderEventRead, OrderRead, StatusChange
from app.domain.orders.services import EventSettler, OrderService
from app.domain.orders.state_machine import OrderStatus

__all__ = ("AdminOrderController", "OrderController")

IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Repeat a POST safely: same key and body within 24 h returns the original order.",
    ),
]
StatusFilter = Annotated[OrderStatus | None, QueryParameter(description="Only orders in this status.")]


class OrderController(Controller):
    path = "/orders"
    tags = ["orders"]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        responses={
            HTTP_201_CREATED: ResponseSpec(
                data_container=OrderRead,
                description="The order (also when replayed: then `Idempotent-Replayed: true`)",
                generate_examples=False,
            ),
            **problems(401, 409, 413, 422),
        },
    )
    async def place_order(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[OrderCreate],
        orders: NamedDependency[OrderService],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[bytes]:
        """Place an order: stock is taken at once; the order starts `pending`."""
        placed = await orders.place_order(request.user.id, data, idempotency_key)
        headers = {"Idempotent-Replayed": "true"} if placed.replayed else {}
        return Response(placed.body, status_code=HTTP_201_CREATED, media_type=MediaType.JSON, headers=headers)

    @get("/", responses=problems(401, 422))
    async def list_orders(
        self,
        request: Request[Principal, Any, Any],
        orders: NamedDependency[OrderService],
        page: PageNumber = 1,
        per_page: PerPage = 20,
        status: StatusFilter = None,
    ) -> Page[OrderRead]:
        """The caller's orders, newest first."""
        return await orders.list_orders(PageParams(page, per_page), user_id=request.user.id, status=status)

    @get("/{order_id:uuid}", responses=problems(401, 404))
    async def get_order(
        self,
        request: Request[Principal, Any, Any],
        order_id: FromPath[uuid.UUID],
        orders: NamedDependency[OrderService],
    ) -> OrderRead:
        """One order: its owner or staff with orders:manage; anyone else gets 404."""
        return await orders.get_visible(request.user, order_id)

    @get("/{order_id:uuid}/events", responses=problems(401, 404))
    async def order_events(
        self,
        request: Request[Principal, Any, Any],
        order_id: FromPath[uuid.UUID],
        orders: NamedDependency[OrderService],
        settle_events: NamedDependency[EventSettler],
    ) -> list[OrderEventRead]:
        """The order's timeline, oldest first (its pending events are published first, for its owner or staff)."""
        return await orders.timeline(request.user, order_id, settle=settle_events)

    @post("/{order_id:uuid}/cancel", status_code=200, responses=problems(401, 404, 409))
    async def cancel_order(
        self,
        request: Request[Principal, Any, Any],
        order_id: FromPath[uuid.UUID],
        orders: NamedDependency[OrderService],
    ) -> OrderRead:
        """Cancel your own order while it is pending or paid; its stock is returned."""
        return await orders.cancel(request.user.id, order_id)

    @patch(
        "/{order_id:uuid}/status",
        guards=[requires_permission(ORDERS_MANAGE)],
        responses=problems(401, 403, 404, 409, 413, 422),
    )
    async def change_status(
        self, order_id: FromPath[uuid.UUID], data: JSONBody[StatusChange], orders: NamedDependency[OrderService]
    ) -> OrderRead:
        """Move an order along pending → paid → shipped → delivered (or cancel it from pending/paid)."""
        return await orders.change_status(order_id, data.status)


class AdminOrderController(Controller):
    path = "/admin/orders"
    tags = ["admin"]
    guards = [requires_permission(ORDERS_MANAGE)]

    @get("/", responses=problems(401, 403, 422))
    async def list_all_orders(
        self,
        orders: NamedDependency[OrderService],
        page: PageNumber = 1,
        per_page: PerPage = 20,
        status: StatusFilter = None,
        user_id: Annotated[uuid.UUID | None, QueryParameter(description="Only this user's orders.")] = None,
    ) -> Page[OrderRead]:
        """Every user's orders, newest first."""
        return await orders.list_orders(PageParams(page, per_page), user_id=user_id, status=status)
