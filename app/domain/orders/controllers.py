"""Routes of ``/orders`` and ``/admin/orders``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Final

from litestar import Controller, MediaType, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from app.core.auth import Principal, requires_permission
from app.core.errors import FieldError, InvalidRequest
from app.core.openapi import problems
from app.core.pagination import MAX_PER_PAGE, CursorPage, Page, PageParams
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
Cursor = Annotated[
    str | None,
    QueryParameter(
        description=(
            "Page by cursor instead of by number: empty for the first page, then the previous page's `next_cursor`. "
            "The response is then `{items, per_page, next_cursor}` (no total; `next_cursor` is null on the last "
            "page), every page costs the same however deep, and following the cursors visits each order that "
            "existed at the first page exactly once. The filters may be repeated or left out, not changed."
        ),
    ),
]
OptionalPageNumber = Annotated[
    int | None, QueryParameter(ge=1, le=1_000_000, description="Page number, from 1 (default 1; not with `cursor`).")
]
OptionalPerPage = Annotated[
    int | None,
    QueryParameter(
        ge=1, le=MAX_PER_PAGE, description=f"Items per page, 1..{MAX_PER_PAGE} (default 20, or the cursor's)."
    ),
]
OrderList = Page[OrderRead] | CursorPage[OrderRead]
#: What both listings (``/orders``, ``/admin/orders``) answer, for their OpenAPI descriptions.
_LISTING: Final = (
    "Without `cursor`: a numbered page, `{items, total, page, per_page, pages}`; a page starting past the\n"
    "10,000th order is 422 `page_too_deep`. With `cursor` (empty for the first page): `{items, per_page,\n"
    "next_cursor}`, no total, any depth; a malformed or tampered cursor is 422 `invalid_cursor`."
)


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

    @get("/", description=f"The caller's orders, newest first.\n\n{_LISTING}", responses=problems(401, 422))
    async def list_orders(
        self,
        request: Request[Principal, Any, Any],
        orders: NamedDependency[OrderService],
        page: OptionalPageNumber = None,
        per_page: OptionalPerPage = None,
        status: StatusFilter = None,
        cursor: Cursor = None,
    ) -> OrderList:
        return await _list(orders, page, per_page, cursor, own=True, user_id=request.user.id, status=status)

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

    @get("/", description=f"Every user's orders, newest first.\n\n{_LISTING}", responses=problems(401, 403, 422))
    async def list_all_orders(
        self,
        orders: NamedDependency[OrderService],
        page: OptionalPageNumber = None,
        per_page: OptionalPerPage = None,
        status: StatusFilter = None,
        user_id: Annotated[uuid.UUID | None, QueryParameter(description="Only this user's orders.")] = None,
        cursor: Cursor = None,
    ) -> OrderList:
        return await _list(orders, page, per_page, cursor, own=False, user_id=user_id, status=status)


async def _list(
    orders: OrderService,
    page: int | None,
    per_page: int | None,
    cursor: str | None,
    *,
    own: bool,
    user_id: uuid.UUID | None,
    status: OrderStatus | None,
) -> OrderList:
    """Both listings: a numbered page (the contract's defaults, page 1 of 20) or, with a cursor, a cursor page."""
    if cursor is None:
        return await orders.list_orders(PageParams(page or 1, per_page or 20), user_id=user_id, status=status)
    if page is not None:
        raise InvalidRequest([FieldError(field="page", message="Use either page or cursor, not both")])
    return await orders.browse_orders(cursor, per_page, own=own, user_id=user_id, status=status)
