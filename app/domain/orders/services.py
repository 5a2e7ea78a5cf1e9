"""Orders: placing them (stock, snapshots, idempotency), reading them, and moving them through their statuses.

Every write here is one explicit transaction that the method commits itself, or a single statement (atomic on its
own); a raised :class:`DomainError` leaves the transaction uncommitted, and the request's session is rolled back
when it closes — nothing is reserved, no key is stored. Statements are SQLAlchemy Core on the hot paths so the
number of round trips is fixed by the code, not by when the ORM decides to flush: placing an order costs the same
few statements for 1 line or 50, and holds its product locks for the length of one statement only.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias

import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    String,
    any_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from uuid_utils.compat import uuid7

from app.core.auth import Principal
from app.core.cursors import CursorCodec, InvalidCursor
from app.core.errors import Conflict, DomainError, FieldError, NotFound
from app.core.pagination import CursorPage, Page, PageParams
from app.core.permissions import ORDERS_MANAGE
from app.db.prepared import DirectPool, Prepared, Transaction, transaction
from app.db.services import Service
from app.domain.addresses.models import Address
from app.domain.addresses.schemas import AddressRead
from app.domain.catalog.models import Product
from app.domain.catalog.stock import LockedProduct, return_stock
from app.domain.orders.events import EVENT_COLUMNS, event_from_row
from app.domain.orders.models import IdempotencyKey, Order, OrderCount, OrderEvent, OrderItem
from app.domain.orders.schemas import (
    OrderCreate,
    OrderEventRead,
    OrderItemRead,
    OrderRead,
    format_usd,
)
from app.domain.orders.state_machine import PAYMENT_TIMEOUT, RESTOCKING_STATUSES, OrderStatus, can_transition

__all__ = (
    "EXPIRY_BATCH",
    "FIRST_PENDING",
    "IDEMPOTENCY_TTL",
    "EventSettler",
    "ExpiredBatch",
    "OrderCursor",
    "OrderService",
    "PendingKey",
    "PlacedOrder",
)

_DEFAULT_PER_PAGE: Final = 20
IDEMPOTENCY_TTL: Final = timedelta(hours=24)
#: Publishes an order's committed events that are still pending, so its timeline is complete right after a change.
#: The event side provides it (``settle_events``, the outbox's ``settle``): orders never import the events package.
EventSettler: TypeAlias = Callable[[uuid.UUID], Awaitable[None]]
#: Unpaid orders cancelled per transaction by :meth:`OrderService.expire_unpaid`: large enough that a batch's fixed
#: cost (six statements and a commit) is spread thin, small enough that the product locks, which every placement
#: needs and the batch holds from its stock statement to its commit, are held for a few milliseconds (about 57 ms
#: per 200-order batch at 3,500 orders/s; 500 per batch slowed placement by about 2 points more).
EXPIRY_BATCH: Final = 200

#: Where a pending order sits in the payment timeout's order: ``(created_at, id)``.
PendingKey: TypeAlias = tuple[datetime, uuid.UUID]
#: Before every order.
FIRST_PENDING: Final[PendingKey] = (datetime(1, 1, 1, tzinfo=UTC), uuid.UUID(int=0))


@dataclass(frozen=True, slots=True)
class ExpiredBatch:
    """What one payment-timeout batch did: how many orders it cancelled, and the key the next batch starts after."""

    count: int
    last: PendingKey


_ORDER_COLUMNS: Final = (
    Order.id,
    Order.user_id,
    Order.status,
    Order.shipping_address,
    Order.total_cents,
    Order.created_at,
    Order.updated_at,
)


def lines_of(order_id: Any) -> Any:
    """Each order's lines as a JSON array of ``[id, product_id, product_name, quantity, price_cents]``, oldest first."""
    return (
        select(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(
                        OrderItem.id,
                        OrderItem.product_id,
                        OrderItem.product_name,
                        OrderItem.quantity,
                        OrderItem.price_cents,
                    ),
                    OrderItem.id,
                )
            )
        )
        .where(OrderItem.order_id == order_id)
        .scalar_subquery()
        .label("lines")
    )


_LINES: Final = lines_of(Order.id)


def _conditions(*, by_id: bool = False, by_user: bool = False, by_status: bool = False) -> list[Any]:
    conditions = []
    if by_id:
        conditions.append(Order.id == bindparam("order_id"))
    if by_user:
        conditions.append(Order.user_id == bindparam("user_id"))
    if by_status:
        conditions.append(Order.status == bindparam("status", type_=String))
    return conditions


def _counted(*, by_user: bool = False, by_status: bool = False) -> Any:
    """The number of matching orders, from the maintained counts (see :class:`OrderCount`): exact, and at most one
    row per user and status to add up, however many orders there are."""
    conditions = []
    if by_user:
        conditions.append(OrderCount.user_id == bindparam("user_id"))
    if by_status:
        conditions.append(OrderCount.status == bindparam("status", type_=String))
    return select(func.coalesce(func.sum(OrderCount.orders), 0).cast(BigInteger)).where(*conditions)


@functools.cache
def _count_query(*, by_user: bool = False, by_status: bool = False) -> Prepared:
    return Prepared(_counted(by_user=by_user, by_status=by_status))


@functools.cache
def _orders_query(*, by_id: bool = False, by_user: bool = False) -> Prepared:
    """Orders with their lines in one statement."""
    return Prepared(select(*_ORDER_COLUMNS, _LINES).where(*_conditions(by_id=by_id, by_user=by_user)))


@functools.cache
def _page_query(*, by_user: bool = False, by_status: bool = False, after: bool = False) -> Prepared:
    """A page of orders, newest first, with their lines; a numbered page (``after=False``) also carries the total.

    Two steps in one statement. The ``page`` subquery finds the page's ids in an index that holds every column it
    needs (``(filters…, created_at, id)``, one per filter combination): an index-only scan that steps over the
    skipped entries — 10,000 at most (``page_too_deep``), ~1 ms — or, with a cursor (``after``), starts right
    after the cursor's ``(created_at, id)`` and reads only the page. Only then are those orders read and their lines
    aggregated; before, the lines subquery ran for every skipped row too (a deep page cost 100-360 ms).
    """
    conditions = _conditions(by_user=by_user, by_status=by_status)
    if after:
        conditions.append(
            tuple_(Order.created_at, Order.id)
            < tuple_(
                bindparam("after_created_at", type_=Order.created_at.type),
                bindparam("after_id", type_=Order.id.type),
            )
        )
    page = (
        select(Order.id, Order.created_at)
        .where(*conditions)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(bindparam("limit"))
    )
    if not after:
        page = page.offset(bindparam("offset"))
    ids = page.subquery("page")
    # Each order of the page by its id, as a LATERAL subquery with a LIMIT so that PostgreSQL cannot flatten it into
    # a join: asyncpg's prepared statements get generic plans, which do not know the page holds at most 100 ids,
    # and the plain join was planned as a hash join over a sequential scan of every order (1 s at a million).
    order = select(*_ORDER_COLUMNS, _LINES).where(Order.id == ids.c.id).limit(1).lateral("o")
    query = select(*order.c).select_from(ids).join(order, true()).order_by(ids.c.created_at.desc(), ids.c.id.desc())
    if not after:
        query = query.add_columns(_counted(by_user=by_user, by_status=by_status).scalar_subquery().label("total"))
    return Prepared(query)


class OrderCursor(msgspec.Struct, array_like=True, forbid_unknown_fields=True, frozen=True):
    """What a cursor of an order list carries: the list and filters it was made for, its page size, and the last
    order its page showed (the next page starts right after it)."""

    own: bool  # "my orders" (``user_id`` is the caller) or the admin list (``user_id`` is its filter)
    user_id: uuid.UUID | None
    status: str | None
    per_page: int
    created_at: datetime
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    """The answer to ``POST /orders``: the serialised order, and whether it was replayed from an idempotency key."""

    body: bytes
    replayed: bool


def _now() -> datetime:
    return datetime.now(UTC)


def _request_hash(data: OrderCreate) -> str:
    return hashlib.sha256(msgspec.json.encode(data)).hexdigest()


def _order_read(row: Any) -> OrderRead:
    return OrderRead(
        id=row["id"],
        user_id=row["user_id"],
        status=OrderStatus(row["status"]),
        items=[
            OrderItemRead(
                id=uuid.UUID(line_id),
                product_id=uuid.UUID(product_id),
                product_name=name,
                quantity=quantity,
                price_cents=price,
                line_total_cents=price * quantity,
            )
            for line_id, product_id, name, quantity, price in row["lines"] or ()
        ],
        shipping_address=row["shipping_address"],
        total_cents=row["total_cents"],
        total_usd=format_usd(row["total_cents"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _claim_idempotency_key(
    tx: Transaction, user_id: uuid.UUID, key: str, request_hash: str, now: datetime
) -> PlacedOrder | None:
    """Claim the key for this request (None), or return the stored response of the request that owns it."""
    for _ in range(3):  # the owning row can expire and be swept between our two statements; try again then
        claimed = await _CLAIM_KEY.fetchval(
            tx, user_id=user_id, key=key, request_hash=request_hash, now=now, expires_at=now + IDEMPOTENCY_TTL
        )
        if claimed is not None:
            return None
        stored = await _STORED_KEY.fetchrow(tx, user_id=user_id, key=key)
        if stored is None or stored["response_body"] is None:
            continue
        if stored["request_hash"] != request_hash:
            raise Conflict(
                "idempotency_key_reused", "This Idempotency-Key was already used with a different request body"
            )
        return PlacedOrder(body=stored["response_body"], replayed=True)
    raise Conflict("idempotency_key_busy", "A request with this Idempotency-Key is still being processed")


#: The caller's shipping address as the order's snapshot, built by PostgreSQL: the fields of ``AddressRead``, with
#: ``created_at`` written exactly as msgspec writes datetimes (RFC 3339 in UTC, ``Z``, microseconds only when there
#: are any), so a snapshot reads the same whichever side built it (the seed command builds them in Python). The one
#: piece of formatting done in SQL: the snapshot is stored by the same statement that reads the address.
def _constant(value: str | int) -> ColumnElement[Any]:
    """A constant written into the statement (not a bind parameter: the hot path sends only the request's values)."""
    return literal_column(f"'{value}'" if isinstance(value, str) else str(value))


_SNAPSHOT_CREATED_AT: Final = func.to_char(
    func.timezone(_constant("UTC"), Address.created_at),
    case(
        (
            func.date_part(_constant("microseconds"), Address.created_at).cast(BigInteger) % _constant(1_000_000)
            == _constant(0),
            _constant('YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        ),
        else_=_constant('YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    ),
)
_SNAPSHOT: Final = func.jsonb_build_object(
    *itertools.chain.from_iterable(
        (_constant(name), _SNAPSHOT_CREATED_AT if name == "created_at" else getattr(Address, name))
        for name in AddressRead.__struct_fields__
    )
)
_P_USER: Final = bindparam("user_id", type_=UUID(as_uuid=True))
_P_ORDER: Final = bindparam("order_id", type_=UUID(as_uuid=True))
_P_NOW: Final = bindparam("now", type_=DateTime(timezone=True))
_P_PRODUCTS: Final = bindparam("product_ids", type_=ARRAY(UUID(as_uuid=True)))
_ADDRESS: Final = (
    select(_SNAPSHOT.label("snapshot"))
    .where(
        Address.id == bindparam("address_id", type_=UUID(as_uuid=True)),
        Address.user_id == _P_USER,
        Address.deleted_at.is_(None),
    )
    .cte("address")
)
_REQUESTED: Final = (
    func.unnest(
        bindparam("item_ids", type_=ARRAY(UUID(as_uuid=True))),
        _P_PRODUCTS,
        bindparam("quantities", type_=ARRAY(Integer)),
    )
    .table_valued("item_id", "product_id", "quantity")
    .render_derived("r")
)
_LOCKED: Final = (
    select(Product.id, Product.name, Product.price_cents, Product.stock, Product.is_active)
    .where(Product.id == any_(_P_PRODUCTS), exists(select(_ADDRESS.c.snapshot)))
    .order_by(Product.id)
    .with_for_update()
    .cte("locked")
)
_LINES_WANTED: Final = (
    select(_REQUESTED.c.item_id, _REQUESTED.c.product_id, _LOCKED.c.name, _LOCKED.c.price_cents, _REQUESTED.c.quantity)
    .select_from(_REQUESTED.join(_LOCKED, _LOCKED.c.id == _REQUESTED.c.product_id))
    .where(_LOCKED.c.is_active, _LOCKED.c.stock >= _REQUESTED.c.quantity)
    .cte("lines")
)
_GO: Final = select(
    (select(func.count()).select_from(_LINES_WANTED).scalar_subquery() == func.cardinality(_P_PRODUCTS)).label("placed")
).cte("go")
_TAKEN: Final = (
    update(Product)
    .values(stock=Product.stock - _LINES_WANTED.c.quantity, updated_at=_P_NOW)
    .where(_GO.c.placed, Product.id == _LINES_WANTED.c.product_id)
    .cte("taken")
)
_NEW_ORDER: Final = (
    insert(Order)
    .from_select(
        ["id", "user_id", "status", "total_cents", "shipping_address", "created_at", "updated_at"],
        select(
            _P_ORDER,
            _P_USER,
            _constant(OrderStatus.PENDING.value),
            select(func.sum(_LINES_WANTED.c.price_cents * _LINES_WANTED.c.quantity)).scalar_subquery(),
            select(_ADDRESS.c.snapshot).scalar_subquery(),
            _P_NOW,
            _P_NOW,
        ).where(_GO.c.placed),
        include_defaults=False,
    )
    .cte("new_order")
)
_NEW_ITEMS: Final = (
    insert(OrderItem)
    .from_select(
        ["id", "order_id", "product_id", "product_name", "price_cents", "quantity"],
        select(
            _LINES_WANTED.c.item_id,
            _P_ORDER,
            _LINES_WANTED.c.product_id,
            _LINES_WANTED.c.name,
            _LINES_WANTED.c.price_cents,
            _LINES_WANTED.c.quantity,
        ).where(_GO.c.placed),
        include_defaults=False,
    )
    .cte("new_items")
)
_NEW_EVENT: Final = (
    insert(OrderEvent)
    .from_select(
        ["type", "order_id", "user_id", "status", "previous_status", "at"],
        select(
            _constant("order_created"), _P_ORDER, _P_USER, _constant(OrderStatus.PENDING.value), null(), _P_NOW
        ).where(_GO.c.placed),
        include_defaults=False,
    )
    .cte("new_event")
)
#: Placing an order, as one statement (atomic on its own, so no transaction round trips hold the product locks):
#:
#: * ``address`` is the caller's address (not deleted) as the order's snapshot; without it nothing else happens;
#: * ``locked`` locks the order's products in id order (see :mod:`app.domain.catalog.stock` for why that order);
#: * ``lines`` keeps the requested lines whose product is active and has the stock, priced and named from the locked
#:   rows; the order goes ahead only if that is every requested line (``go``);
#: * then, all or nothing: take the stock, insert the order with its total, its lines and its ``order_created``
#:   event (PostgreSQL runs every data-modifying CTE, and checks the foreign keys at the statement's end);
#: * the answer is whether it was placed, the snapshot (none: no such address of the caller's), and the locked
#:   products, from which a refusal names every bad line.
_PLACE_ORDER: Final = Prepared(
    select(
        _GO.c.placed,
        select(_ADDRESS.c.snapshot).scalar_subquery().label("shipping_address"),
        *_LOCKED.c,
    )
    .select_from(_GO.outerjoin(_LOCKED, true()))
    .add_cte(_TAKEN, _NEW_ORDER, _NEW_ITEMS, _NEW_EVENT)
)
_order_ids = bindparam("order_ids", type_=ARRAY(UUID(as_uuid=True)))
_moves = (
    func.unnest(
        _order_ids,
        bindparam("user_ids", type_=ARRAY(UUID(as_uuid=True))),
        bindparam("previous_statuses", type_=ARRAY(String)),
    )
    .table_valued("order_id", "user_id", "previous_status")
    .render_derived()
)
#: The ``order_status_changed`` events of the moves made in a transaction (:func:`_apply_moves`), one per order, in
#: the order given.
_INSERT_STATUS_EVENTS: Final = Prepared(
    insert(OrderEvent).from_select(
        ["type", "order_id", "user_id", "status", "previous_status", "at", "reason"],
        select(
            literal("order_status_changed"),
            _moves.c.order_id,
            _moves.c.user_id,
            bindparam("status", type_=String),
            _moves.c.previous_status,
            bindparam("now", type_=DateTime(timezone=True)),
            bindparam("reason", type_=String),
        ),
    )
)
_claim = pg_insert(IdempotencyKey).values(
    user_id=bindparam("user_id"),
    key=bindparam("key"),
    request_hash=bindparam("request_hash"),
    created_at=bindparam("now"),
    expires_at=bindparam("expires_at"),
)
_CLAIM_KEY: Final = Prepared(
    _claim.on_conflict_do_update(
        index_elements=[IdempotencyKey.user_id, IdempotencyKey.key],
        set_={
            "request_hash": _claim.excluded.request_hash,
            "created_at": _claim.excluded.created_at,
            "expires_at": _claim.excluded.expires_at,
            "order_id": null(),
            "response_body": null(),
        },
        where=IdempotencyKey.expires_at <= _claim.excluded.created_at,
    ).returning(IdempotencyKey.key)
)
_STORED_KEY: Final = Prepared(
    select(IdempotencyKey.request_hash, IdempotencyKey.response_body).where(
        IdempotencyKey.user_id == bindparam("user_id"), IdempotencyKey.key == bindparam("key")
    )
)
_STORE_RESPONSE: Final = Prepared(
    update(IdempotencyKey)
    .where(IdempotencyKey.user_id == bindparam("user_id"), IdempotencyKey.key == bindparam("key"))
    .values(order_id=bindparam("order_id"), response_body=bindparam("response_body"))
)
_LOCK_ORDER: Final = Prepared(
    select(Order.user_id, Order.status).where(Order.id == bindparam("order_id")).with_for_update()
)
#: The units of the given orders, per product (what cancelling them puts back).
_ORDER_UNITS: Final = Prepared(
    select(OrderItem.product_id, func.sum(OrderItem.quantity).label("quantity"))
    .where(OrderItem.order_id == func.any(_order_ids))
    .group_by(OrderItem.product_id)
)
_SET_STATUS: Final = Prepared(
    update(Order)
    .where(Order.id == func.any(_order_ids))
    .values(status=bindparam("status"), updated_at=bindparam("now"))
)
#: Pending orders placed at or before the cutoff, oldest first from a key on, locked; rows another transaction holds
#: (a payment or a cancel in progress, another worker's batch) are skipped, not waited for — the next sweep looks at
#: them again if they are still pending. The status is written as a literal so that the generic plan asyncpg ends up
#: with can still use the partial index ``ix_orders_pending_created_at`` (a bind parameter could not be matched to
#: it). Each batch of a sweep starts after the last key of the one before: from the start, batch k walked past the
#: index entries of the k x 500 orders the sweep had just cancelled (dead until vacuumed), quadratic in the backlog.
_LOCK_DUE: Final = Prepared(
    select(Order.id, Order.user_id, Order.created_at)
    .where(
        text(f"orders.status = '{OrderStatus.PENDING.value}'"),
        Order.created_at <= bindparam("cutoff"),
        tuple_(Order.created_at, Order.id) > tuple_(bindparam("after_at"), bindparam("after_id")),
    )
    .order_by(Order.created_at, Order.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)

#: A payment-timeout batch does not wait for its commit to reach the disk. Under a drain, order placements were found
#: waiting on the WAL (``WALWrite``/``WALSync``) far more than on anything else, and a batch's own flush is one more
#: in that queue. Safe here, and only here: a batch lost in a crash loses its event rows with it (nothing was
#: published or emailed), its orders are still pending, and the next sweep cancels them again.
_ASYNC_COMMIT: Final = Prepared(text("SET LOCAL synchronous_commit = off"))

#: The statuses an order may be in to move to each status (from the status table).
_SOURCES: Final = {
    target.value: [status.value for status in OrderStatus if can_transition(status, target)] for target in OrderStatus
}
_current = (
    select(Order.id, Order.user_id, Order.status).where(Order.id == bindparam("order_id")).with_for_update()
).cte("current_order")
_moved = (
    update(Order)
    .where(Order.id == _current.c.id, _current.c.status == func.any(bindparam("sources", type_=ARRAY(String))))
    .values(status=bindparam("status"), updated_at=bindparam("now"))
    .returning(*_ORDER_COLUMNS)
    .cte("moved")
)
_move_event = insert(OrderEvent).from_select(
    ["type", "order_id", "user_id", "status", "previous_status", "at"],
    select(
        literal("order_status_changed"),
        _moved.c.id,
        _moved.c.user_id,
        _moved.c.status,
        _current.c.status,
        bindparam("now", type_=DateTime(timezone=True)),
    ).select_from(_moved.join(_current, true())),
)
#: A status change that returns no stock, as one statement: lock the order, move it if its current status allows
#: (a compare-and-set against the status table's sources), record the event, and return the order with its lines —
#: or, if it may not move, its current status. No row: no such order.
_MOVE: Final = Prepared(
    select(_current.c.status.label("previous_status"), *_moved.c, lines_of(_moved.c.id))
    .select_from(_current.outerjoin(_moved, true()))
    .add_cte(_move_event.cte("move_event"))
)


class OrderService(Service[Order]):
    class Repo(SQLAlchemyAsyncRepository[Order]):
        model_type = Order

    repository_type = Repo

    def __init__(self, *args: Any, cursors: CursorCodec | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Signs and checks the cursors of :meth:`browse_orders` (keyed by the app's JWT secret).
        self.cursors = cursors

    # ----------------------------------------------------------------------------------------------- placing orders

    async def place_order(self, user_id: uuid.UUID, data: OrderCreate, idempotency_key: str | None) -> PlacedOrder:
        """Create a pending order, taking its stock, in one transaction.

        Rules, in the order they are checked: each product at most once (``duplicate_product``); the address must be
        the caller's (``address_not_found``); every product must exist and be active (``product_unavailable``); every
        line must be in stock (``insufficient_stock``, naming each short line). Stock is locked and decremented as
        described in :mod:`app.domain.catalog.stock`.

        Idempotency: with a key, the first statement claims ``(user, key)`` with ``INSERT … ON CONFLICT``. A
        concurrent request with the same key blocks on that index entry until this transaction ends; if it commits,
        the other sees the stored response (same body → replay, different body → 409); if it rolls back (any 4xx),
        the other proceeds as if it were first. An expired key (older than 24 h) is claimed afresh.

        Round trips, whatever the number of lines: one statement that reads the address, locks, checks and writes
        (``_PLACE_ORDER``); with a key, also the claim and storing the response, all in one transaction.
        """
        _reject_duplicate_products(data)
        if idempotency_key is None:
            return PlacedOrder(body=(await self._place(self.direct, user_id, data, _now()))[1], replayed=False)
        now = _now()
        async with transaction(self.direct) as tx:
            replay = await _claim_idempotency_key(tx, user_id, idempotency_key, _request_hash(data), now)
            if replay is not None:
                return replay
            order_id, body = await self._place(tx, user_id, data, now)
            await _STORE_RESPONSE.execute(
                tx, user_id=user_id, key=idempotency_key, order_id=order_id, response_body=body
            )
        return PlacedOrder(body=body, replayed=False)

    async def _place(
        self, source: DirectPool | Transaction, user_id: uuid.UUID, data: OrderCreate, now: datetime
    ) -> tuple[uuid.UUID, bytes]:
        """Place the order (committed, unless ``source`` is a transaction) and serialise it."""
        order_id = uuid7()
        item_ids = [uuid7() for _ in data.items]
        params = {
            "order_id": order_id,
            "user_id": user_id,
            "address_id": data.shipping_address_id,
            "now": now,
            "item_ids": item_ids,
            "product_ids": [line.product_id for line in data.items],
            "quantities": [line.quantity for line in data.items],
        }
        rows = await _PLACE_ORDER.fetch(source, **params)
        snapshot = rows[0]["shipping_address"]
        if snapshot is None:
            raise DomainError(
                "address_not_found",
                "The shipping address does not exist or is not yours",
                errors=[FieldError(field="shipping_address_id", message="Unknown address")],
            )
        products = {row["id"]: LockedProduct(*tuple(row)[2:]) for row in rows if row["id"] is not None}
        if not rows[0]["placed"]:
            _check_availability(data, products)  # names every unavailable or short line
            raise RuntimeError("the order was refused although every line passes the checks")
        items = [
            OrderItemRead(
                id=item_id,
                product_id=line.product_id,
                product_name=products[line.product_id].name,
                quantity=line.quantity,
                price_cents=products[line.product_id].price_cents,
                line_total_cents=products[line.product_id].price_cents * line.quantity,
            )
            for item_id, line in zip(item_ids, data.items, strict=True)
        ]
        total = sum(item.line_total_cents for item in items)
        order = OrderRead(
            id=order_id,
            user_id=user_id,
            status=OrderStatus.PENDING,
            items=items,
            shipping_address=snapshot,
            total_cents=total,
            total_usd=format_usd(total),
            created_at=now,
            updated_at=now,
        )
        return order_id, msgspec.json.encode(order)

    # ----------------------------------------------------------------------------------------------------- reading

    async def get_visible(self, caller: Principal, order_id: uuid.UUID) -> OrderRead:
        """The order if the caller owns it or may manage orders; otherwise 404, whether or not it exists."""
        if caller.can(ORDERS_MANAGE):
            row = await _orders_query(by_id=True).fetchrow(self.direct, order_id=order_id)
        else:
            row = await _orders_query(by_id=True, by_user=True).fetchrow(
                self.direct, order_id=order_id, user_id=caller.id
            )
        if row is None:
            raise NotFound("Order")
        return _order_read(row)

    async def list_orders(
        self, paging: PageParams, *, user_id: uuid.UUID | None = None, status: OrderStatus | None = None
    ) -> Page[OrderRead]:
        """A page of orders with their lines, newest first: the caller's own (``user_id``) or everyone's (admin).

        One round trip: the page, each order's lines (aggregated per order) and the total (from the maintained
        counts) come from one statement; only a page past the end needs a second one for the total. The cost does
        not grow with the number of orders (see ``_page_query``).
        """
        params: dict[str, Any] = {"limit": paging.per_page, "offset": paging.offset}
        if user_id is not None:
            params["user_id"] = user_id
        if status is not None:
            params["status"] = status.value
        by = {"by_user": user_id is not None, "by_status": status is not None}
        rows = await _page_query(**by).fetch(self.direct, **params)
        counted = {name: value for name, value in params.items() if name not in ("limit", "offset")}
        return await Page.counted(
            [_order_read(row) for row in rows],
            rows,
            paging,
            lambda: _count_query(**by).fetchval(self.direct, **counted),
        )

    async def browse_orders(
        self,
        cursor: str,
        per_page: int | None,
        *,
        own: bool,
        user_id: uuid.UUID | None = None,
        status: OrderStatus | None = None,
    ) -> CursorPage[OrderRead]:
        """A page of orders by cursor: ``""`` for the first, then each page's ``next_cursor``, newest first.

        The cursor carries the filters it was made for: a request may repeat them or leave them out, but not
        change them (``invalid_cursor``), nor use a customer's cursor on the admin list or another customer's.
        ``per_page`` may change from page to page (default: the cursor's, or 20).

        Following the cursors visits every order that existed when the first page was read exactly once: pages are
        cut by the last order shown, ``(created_at, id)``, a key that never changes; orders placed meanwhile are
        newer than any cursor and never show up in later pages. An order whose status changes out of the filter
        on the way is skipped, as it would be by any query made after the change. One index range per page: the
        thousandth page costs what the first does.
        """
        status_value = status.value if status is not None else None
        after: OrderCursor | None = None
        if cursor:
            after = self._cursors().decode(cursor, OrderCursor)
            if after.own is not own or (own and after.user_id != user_id):
                raise InvalidCursor("made for another list")
            if (not own and user_id is not None and user_id != after.user_id) or (
                status_value is not None and status_value != after.status
            ):
                raise InvalidCursor("made for other filters")
            user_id, status_value = after.user_id, after.status
        per_page = per_page or (after.per_page if after else _DEFAULT_PER_PAGE)
        params: dict[str, Any] = {"limit": per_page + 1}  # one more: is there a next page?
        if user_id is not None:
            params["user_id"] = user_id
        if status_value is not None:
            params["status"] = status_value
        if after is not None:
            params["after_created_at"], params["after_id"] = after.created_at, after.id
        else:
            params["offset"] = 0
        query = _page_query(by_user=user_id is not None, by_status=status_value is not None, after=after is not None)
        rows = await query.fetch(self.direct, **params)
        items = [_order_read(row) for row in rows[:per_page]]
        next_cursor = None
        if len(rows) > per_page:
            last = items[-1]
            next_cursor = self._cursors().encode(
                OrderCursor(own, user_id, status_value, per_page, last.created_at, last.id)
            )
        return CursorPage(items=items, per_page=per_page, next_cursor=next_cursor)

    def _cursors(self) -> CursorCodec:
        if self.cursors is None:
            raise RuntimeError("OrderService needs a CursorCodec to page by cursor")
        return self.cursors

    async def timeline(
        self,
        caller: Principal,
        order_id: uuid.UUID,
        *,
        settle: EventSettler | None = None,
    ) -> list[OrderEventRead]:
        """The order's published events, oldest first (same visibility rule as the order itself).

        ``settle`` (the outbox's: it publishes the order's committed events that are still pending, so the timeline
        is complete right after a change) runs only once the caller may see the order. Run first, it let anyone who
        guessed or saw an order id make this process take the dispatch lock and publish, a round of statements and
        Redis writes per request, before the 404.
        """
        session = self.session
        owner = await session.scalar(select(Order.user_id).where(Order.id == order_id))
        if owner is None or (owner != caller.id and not caller.can(ORDERS_MANAGE)):
            raise NotFound("Order")
        if settle is not None:
            await settle(order_id)
        rows = await session.execute(
            select(*EVENT_COLUMNS)
            .where(OrderEvent.order_id == order_id, OrderEvent.event_id.is_not(None))
            .order_by(OrderEvent.event_id)
        )
        return [event_from_row(row) for row in rows.mappings()]

    # -------------------------------------------------------------------------------------------- status changes

    async def cancel(self, user_id: uuid.UUID, order_id: uuid.UUID) -> OrderRead:
        """The owner cancels (from pending or paid); the stock comes back in the same transaction."""
        return await self._transition(order_id, OrderStatus.CANCELLED, owner_id=user_id)

    async def change_status(self, order_id: uuid.UUID, target: OrderStatus) -> OrderRead:
        """Staff move an order along the status machine; cancelling returns its stock.

        A move that returns no stock is one statement (see ``_MOVE``), a single round trip that is atomic on its
        own; one that does takes the product locks too, in :meth:`_transition`.
        """
        if target in RESTOCKING_STATUSES:
            return await self._transition(order_id, target, owner_id=None)
        row = await _MOVE.fetchrow(
            self.direct, order_id=order_id, status=target.value, sources=_SOURCES[target.value], now=_now()
        )
        if row is None:
            raise NotFound("Order")
        if row["id"] is None:
            raise Conflict("invalid_transition", f"An order cannot go from {row['previous_status']} to {target.value}")
        return _order_read(row)

    async def _transition(self, order_id: uuid.UUID, target: OrderStatus, *, owner_id: uuid.UUID | None) -> OrderRead:
        """Lock the order row, check the move against the status table, apply it and record the event.

        The row lock serialises concurrent changes of one order (a customer's cancel racing a staff member's
        "paid"): the second waits, then sees the first's result and is judged against it, so stock is returned at
        most once and the final state is always one the table allows. Lock order is order row, then products (in id
        order); placing an order only locks products, so the two cannot deadlock.
        """
        async with transaction(self.direct) as tx:
            current_row = await _LOCK_ORDER.fetchrow(tx, order_id=order_id)
            if current_row is None or (owner_id is not None and current_row["user_id"] != owner_id):
                raise NotFound("Order")
            current = OrderStatus(current_row["status"])
            if not can_transition(current, target):
                raise Conflict("invalid_transition", f"An order cannot go from {current.value} to {target.value}")
            await _apply_moves(tx, [_Move(order_id, current_row["user_id"], current)], target)
            row = await _orders_query(by_id=True).fetchrow(tx, order_id=order_id)
        assert row is not None  # it was locked and changed a moment ago, and orders are never deleted
        return _order_read(row)

    # ---------------------------------------------------------------------------------------------- payment timeout

    async def expire_unpaid(
        self, *, placed_before: datetime, after: PendingKey = FIRST_PENDING, limit: int = EXPIRY_BATCH
    ) -> ExpiredBatch:
        """Cancel up to ``limit`` orders still ``pending`` that were placed at or before ``placed_before`` (the
        payment timeout), oldest first from after the key ``after``; their stock comes back and each gets an
        ``order_status_changed`` event with ``reason: "payment_timeout"``, all in one transaction. Returns how many
        were cancelled (fewer than ``limit``: none are left due, unless other transactions held some) and the key to
        continue after.

        Exactly once, however many workers sweep at the same time: the batch is the oldest due orders that no other
        transaction holds (``FOR UPDATE SKIP LOCKED``), and the lock is kept until the commit, after which they are no
        longer pending. Races with people: a payment (``PATCH …/status``) or a customer's cancel that locked the order
        first makes the sweep skip it (paid or cancelled, it is never due again); one that comes second waits for the
        sweep's commit, finds the order cancelled and gets 409 ``invalid_transition``. The sweep takes order rows
        without waiting and products in id order, so it cannot deadlock with a status change (order, then products)
        or a placement (products only).
        """
        async with transaction(self.direct) as tx:
            await _ASYNC_COMMIT.execute(tx)
            due = await _LOCK_DUE.fetch(tx, cutoff=placed_before, after_at=after[0], after_id=after[1], limit=limit)
            if due:
                moves = [_Move(row["id"], row["user_id"], OrderStatus.PENDING) for row in due]
                await _apply_moves(tx, moves, OrderStatus.CANCELLED, reason=PAYMENT_TIMEOUT)
        return ExpiredBatch(len(due), (due[-1]["created_at"], due[-1]["id"]) if due else after)


@dataclass(frozen=True, slots=True)
class _Move:
    """An order, locked in the current transaction, about to leave ``current``."""

    order_id: uuid.UUID
    user_id: uuid.UUID
    current: OrderStatus


async def _apply_moves(
    tx: Transaction, moves: Sequence[_Move], target: OrderStatus, *, reason: str | None = None
) -> None:
    """Move locked orders to ``target``: the one path for a change that runs in a transaction (a cancel by a person,
    and the payment timeout's batches), so the status table and the stock rule are applied the same way.

    For a restocking status, every unit of the orders is put back first (products locked in id order by
    :func:`~app.domain.catalog.stock.return_stock`); then the status is set and one event per order recorded. Two
    statements, four with the stock, whatever the number of orders.

    The stock comes first because of lock order: setting the status writes the customers' rows of ``order_counts``
    (its trigger), and a placement locks its products before it writes its customer's row. Taken the other way round
    (counts, then products), a payment-timeout batch and a placement by one of its customers deadlocked within
    seconds under load (``test_a_sweep_and_the_same_customers_placing_orders_meanwhile_never_deadlock``).
    """
    if not all(can_transition(move.current, target) for move in moves):
        raise RuntimeError(f"moves to {target.value} that the status table forbids: check before applying")
    order_ids = [move.order_id for move in moves]
    now = _now()
    if target in RESTOCKING_STATUSES:
        units = await _ORDER_UNITS.fetch(tx, order_ids=order_ids)
        await return_stock(tx, {row["product_id"]: row["quantity"] for row in units})
    await _SET_STATUS.execute(tx, order_ids=order_ids, status=target.value, now=now)
    await _INSERT_STATUS_EVENTS.execute(
        tx,
        order_ids=order_ids,
        user_ids=[move.user_id for move in moves],
        previous_statuses=[move.current.value for move in moves],
        status=target.value,
        now=now,
        reason=reason,
    )


def _reject_duplicate_products(data: OrderCreate) -> None:
    seen: dict[uuid.UUID, int] = {}
    errors: list[FieldError] = []
    for index, line in enumerate(data.items):
        if line.product_id in seen:
            errors.append(
                FieldError(
                    field=f"items[{index}].product_id",
                    message=f"Product already ordered in items[{seen[line.product_id]}]",
                    product_id=line.product_id,
                )
            )
        else:
            seen[line.product_id] = index
    if errors:
        raise DomainError("duplicate_product", "Each product may appear only once per order", errors=errors)


def _check_availability(data: OrderCreate, products: dict[uuid.UUID, Any]) -> None:
    unavailable = [
        FieldError(field=f"items[{i}].product_id", message="Unknown or archived product", product_id=line.product_id)
        for i, line in enumerate(data.items)
        if line.product_id not in products or not products[line.product_id].is_active
    ]
    if unavailable:
        raise DomainError("product_unavailable", "Some products do not exist or are no longer sold", errors=unavailable)
    short = [
        FieldError(
            field=f"items[{i}].quantity",
            message=f"Only {products[line.product_id].stock} in stock, {line.quantity} requested",
            product_id=line.product_id,
            requested=line.quantity,
            available=products[line.product_id].stock,
        )
        for i, line in enumerate(data.items)
        if products[line.product_id].stock < line.quantity
    ]
    if short:
        raise DomainError("insufficient_stock", "Not enough stock for some lines; nothing was reserved", errors=short)
