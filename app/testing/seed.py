"""Bulk, realistic, reproducible data: what ``litestar seed`` and the dev command's first start write.

How a run works
    1. **Plan** (nothing written): users from :class:`RegistrationFactory` (all with :data:`DEFAULT_PASSWORD`,
       hashed once), 1-3 addresses each from :class:`AddressCreateFactory`, products from
       :class:`ProductCreateFactory`. Every body goes through the API's own decoder (``msgspec`` with the request
       struct's constraints), so nothing the API would refuse gets in. Emails and skus already in the database are
       drawn again.
    2. **Demand**: the shape of every order (its products, quantities and final status) is drawn once, to learn
       how many units of each product will be sold. A product starts with that many plus the stock it should have
       left (the factory's draw, or none for about one product in twelve), so it never runs short and ends with
       ``stock >= 0``, and ``initial stock = remaining stock + units sold`` (sold = non-cancelled lines).
       :attr:`Seeder.initial_stock` keeps the starting stock of each product.
    3. **Customers and products** are written with COPY, one transaction per batch.
    4. **Orders**: the same shapes are drawn again and each order is built by :func:`build_order_graph` (the rules
       of ``POST /orders``, snapshots, total, stock, one event per step of its history). One transaction per batch
       holds its orders, lines, events and the stock they took, so a Ctrl-C loses at most the batch in flight, and
       what committed is consistent.

Events are history, not news
    Seeded events get their ``event_id`` and ``dispatched_at``/``emailed_at`` at once, so the outbox dispatcher
    does not publish them to WebSocket listeners or email anyone. Ids continue from ``max(event_id)`` while holding
    the dispatcher's advisory lock (:data:`app.events.outbox.LOCK_KEY`), so they can neither collide with nor fall
    below the ids the live dispatcher hands out. It is the transaction-scoped variant of the lock: taken just before
    the batch's events are written and released by its commit (or rollback), so it is never held longer than
    necessary, nor leaked by an interrupted run.

Reproducible
    Every value comes from random streams derived from the seed, the row counts of ``users``, ``products`` and
    ``orders`` when the run starts, and ``as_of`` (the end of the generated history). So the same seed and
    ``as_of`` on an empty database give the same rows, ids included, and a second run on the same database adds
    different rows instead of colliding with the first. (The only exception: ``order_events.id``, an identity column
    PostgreSQL numbers, which the public ``event_id`` does not depend on.)

On a connection that is already inside a transaction (some tests), each batch becomes a savepoint instead, and
rolling that transaction back removes everything.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol, TypeVar

import msgspec
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.accounts.schemas import Registration
from app.domain.accounts.services import DEFAULT_ROLE
from app.domain.addresses.models import Address
from app.domain.catalog.models import Product
from app.domain.orders.events import EVENT_COLUMNS
from app.domain.orders.state_machine import PAYMENT_TIMEOUT, OrderStatus
from app.events.outbox import LAST_EVENT_ID, LOCK_KEY
from app.testing.factories import (
    DEFAULT_PASSWORD,
    AddressCreateFactory,
    OrderEventRow,
    OrderGraph,
    OrderItemRow,
    ProductCreateFactory,
    RegistrationFactory,
    build_order_graph,
    password_hash_for,
    with_values,
)
from app.testing.values import FakeValues, Transition

__all__ = ("SEED_PASSWORD", "SeedOptions", "SeedProgress", "SeedReport", "Seeder", "Stage", "start_of_day")

#: The password of every seeded user.
SEED_PASSWORD: Final = DEFAULT_PASSWORD

Stage = Literal["customers", "products", "orders"]
S = TypeVar("S", bound=msgspec.Struct)
T = TypeVar("T")

#: When seeded customers and products appear: in the two months before the order history starts.
_ONBOARDING: Final = timedelta(days=60)
#: A status change is emailed a moment after it is dispatched.
_MAIL_DELAY: Final = timedelta(seconds=2)
_ADDRESSES_PER_USER: Final = ((1, 2, 3), (60, 30, 10))
_SOLD_OUT_SHARE: Final = 0.08

_USER_COLUMNS: Final = ("id", "email", "full_name", "password_hash", "is_active", "created_at", "updated_at")
_ADDRESS_COLUMNS: Final = (
    "id", "user_id", "recipient_name", "line1", "line2", "city", "region", "postal_code", "country", "phone",
    "created_at", "updated_at",
)  # fmt: skip
_PRODUCT_COLUMNS: Final = (
    "id", "sku", "name", "description", "price_cents", "stock", "is_active", "created_at", "updated_at",
)  # fmt: skip
_ORDER_COLUMNS: Final = ("id", "user_id", "status", "total_cents", "shipping_address", "created_at", "updated_at")
_ITEM_COLUMNS: Final = ("id", "order_id", "product_id", "product_name", "price_cents", "quantity")
#: The event's columns (``OrderEventRow`` is the same list without ``event_id``), then the dispatch marks.
_EVENT_COLUMNS: Final = (*(column.key for column in EVENT_COLUMNS), "dispatched_at", "emailed_at")

_COUNTS = text("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM products), (SELECT count(*) FROM orders)")
_TAKEN_EMAILS = text("SELECT email FROM users WHERE email = ANY(CAST(:values AS text[]))")
_TAKEN_SKUS = text("SELECT sku FROM products WHERE sku = ANY(CAST(:values AS text[]))")
_KNOWN_USERS = text("SELECT id FROM users WHERE id = ANY(CAST(:ids AS uuid[]))")
_BACKDATE = text("UPDATE users SET created_at = :at WHERE id = :id AND created_at > :at")
# Same lock order as placing an order (products by id), so a live order taking the same products cannot deadlock.
_LOCK_PRODUCTS = text("SELECT id FROM products WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR UPDATE")
_TAKE_STOCK = text(
    """
    UPDATE products AS p SET stock = p.stock - d.sold, updated_at = greatest(p.updated_at, d.at)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:sold AS integer[]), CAST(:at AS timestamptz[])) AS d(id, sold, at)
    WHERE p.id = d.id
    """
)
_OUTBOX_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def start_of_day(moment: datetime | None = None) -> datetime:
    """Midnight UTC of ``moment`` (default: today): the default end of the seeded history, stable for a whole day."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class SeedOptions:
    """What to create, and the history's end (``as_of``) and length (``span``).

    ``customers`` are existing users who get ``customer_addresses`` addresses each and place orders too (the demo
    customer of the dev command); seeded users get 1-3 addresses.
    """

    users: int = 0
    products: int = 0
    orders: int = 0
    seed: int = 0
    as_of: datetime = field(default_factory=start_of_day)
    span: timedelta = timedelta(days=180)
    customers: Sequence[uuid.UUID] = ()
    customer_addresses: int = 2
    batch_size: int = 2_000
    #: ``ORDER_PAYMENT_TTL`` (0: off). Pending orders are placed within it before ``as_of`` (an older one would have
    #: been cancelled), and one whose deadline is past by ``clock`` (the real time of the run) is written as the
    #: workers would have left it — cancelled for ``payment_timeout`` at its deadline — so no seeded order is pending
    #: longer than the TTL, and the first worker sweep finds nothing of the history to cancel.
    payment_ttl: int = 1800
    clock: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if min(self.users, self.products, self.orders) < 0 or self.batch_size < 1 or self.customer_addresses < 1:
            raise ValueError("counts must be >= 0, batch_size and customer_addresses >= 1")
        if self.orders and not (self.products and (self.users or self.customers)):
            raise ValueError("orders need products and customers (users) of the same run")


@dataclass(slots=True)
class SeedReport:
    """What a run committed so far (complete when it returns; partial if it was interrupted)."""

    seed: int
    as_of: datetime
    users: int = 0
    addresses: int = 0
    products: int = 0
    orders: int = 0
    items: int = 0
    events: int = 0
    first_event_id: int | None = None
    last_event_id: int | None = None
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        """Rows written (users count twice: the user and its ``user_roles`` row)."""
        return 2 * self.users + self.addresses + self.products + self.orders + self.items + self.events


class SeedProgress(Protocol):
    """Receives progress, e.g. to drive a progress bar: the size of each stage, then each committed batch."""

    def start(self, stage: Stage, total: int) -> None: ...

    def advance(self, stage: Stage, count: int) -> None: ...


@dataclass(frozen=True, slots=True)
class _Customer:
    id: uuid.UUID
    joined: datetime
    addresses: list[Address]


@dataclass(frozen=True, slots=True)
class _Entities:
    """The run's source of users, addresses and products: its own values, and factories drawing from them."""

    values: FakeValues
    registrations: type[RegistrationFactory]
    addresses: type[AddressCreateFactory]
    products: type[ProductCreateFactory]

    @classmethod
    def seeded(cls, seed: str) -> _Entities:
        values = FakeValues(seed)
        return cls(
            values,
            with_values(RegistrationFactory, values),
            with_values(AddressCreateFactory, values),
            with_values(ProductCreateFactory, values),
        )


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the demand pass needs of an order: final status and ``(product index, quantity)`` lines."""

    status: OrderStatus
    lines: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class _OrderBatch:
    """One transaction's worth of orders, as COPY records, and the stock their lines took."""

    orders: list[tuple[Any, ...]]
    items: list[OrderItemRow]
    events: list[OrderEventRow]  # in the order they get their event ids
    sold: dict[uuid.UUID, int]  # units taken per product (a cancelled order's came back: 0)
    changed: dict[uuid.UUID, datetime]  # when each product's stock last changed

    @classmethod
    def of(cls, graphs: list[OrderGraph], snapshots: dict[uuid.UUID, str]) -> _OrderBatch:
        graphs = sorted(graphs, key=lambda graph: graph.order.created_at)
        orders = [
            (*order[:4], snapshots[uuid.UUID(order.shipping_address["id"])], *order[5:])
            for order in (graph.order for graph in graphs)
        ]
        sold: dict[uuid.UUID, int] = {}
        changed: dict[uuid.UUID, datetime] = {}
        for graph in graphs:
            cancelled = graph.order.status == OrderStatus.CANCELLED.value
            moment = graph.order.updated_at if cancelled else graph.order.created_at
            for item in graph.items:
                sold[item.product_id] = sold.get(item.product_id, 0) + (0 if cancelled else item.quantity)
                changed[item.product_id] = max(moment, changed.get(item.product_id, moment))
        # Event ids follow the events' times within the batch (the sort is stable: each order's steps stay in order).
        events = sorted((event for graph in graphs for event in graph.events), key=lambda event: event.at)
        return cls(orders, [item for graph in graphs for item in graph.items], events, sold, changed)


class Seeder:
    """One run: ``await Seeder(options).run(connection)``. :attr:`report` says what committed, even after Ctrl-C."""

    def __init__(self, options: SeedOptions, *, progress: SeedProgress | None = None) -> None:
        self.options = options
        self.progress = progress
        self.report = SeedReport(seed=options.seed, as_of=options.as_of)
        #: Each seeded product's stock before its orders took any: remaining stock + units sold, once committed.
        self.initial_stock: dict[uuid.UUID, int] = {}
        self._registrations: dict[uuid.UUID, Registration] = {}

    async def run(self, conn: AsyncConnection) -> SeedReport:
        started = time.perf_counter()
        try:
            await self._run(conn)
        finally:
            self.report.seconds = time.perf_counter() - started
        return self.report

    async def _run(self, conn: AsyncConnection) -> None:
        options = self.options
        async with _unit(conn):
            counts = tuple((await conn.execute(_COUNTS)).one())
        key = ":".join(map(str, (options.seed, *counts, options.as_of.isoformat())))
        entities = _Entities.seeded(f"{key}:entities")
        history_starts = options.as_of - options.span

        users = await self._plan_users(conn, entities, history_starts)
        products = await self._plan_products(conn, entities, history_starts)
        existing = await self._plan_existing_customers(conn, entities, history_starts)
        customers = users + existing
        product_weights = _cumulative([entities.values.popularity() for _ in products])
        customer_weights = _cumulative([entities.values.popularity() for _ in customers])

        # A cancelled order held its units until it was cancelled: at its place in the sequence the product must
        # have them too (they come back afterwards), so the starting stock covers that peak as well.
        sold = [0] * len(products)
        peak = [0] * len(products)
        for shape in self._shapes(key, product_weights):
            cancelled = shape.status is OrderStatus.CANCELLED
            for index, quantity in shape.lines:
                if cancelled:
                    peak[index] = max(peak[index], sold[index] + quantity)
                else:
                    sold[index] += quantity
        for product, units, needed in zip(products, sold, peak, strict=True):
            leftover = 0 if entities.values.random.random() < _SOLD_OUT_SHARE else product.stock
            product.stock = self.initial_stock[product.id] = max(units + leftover, needed)

        await self._write_customers(conn, users, existing, password_hash_for(SEED_PASSWORD, _salt(key)))
        await self._write_products(conn, products)
        await self._write_orders(conn, key, customers, customer_weights, products, product_weights)

    # ------------------------------------------------------------------------------------------------- planning

    async def _plan_users(self, conn: AsyncConnection, entities: _Entities, before: datetime) -> list[_Customer]:
        def draw() -> Registration:
            return entities.registrations.build(password=SEED_PASSWORD)

        bodies = await _redraw_taken(conn, [draw() for _ in range(self.options.users)], _TAKEN_EMAILS, "email", draw)
        customers = []
        for body in bodies:
            joined = _moment(entities.values, before - _ONBOARDING, before)
            user_id = entities.values.uuid7(joined)
            self._registrations[user_id] = _decoded(body)
            count = entities.values.random.choices(*_ADDRESSES_PER_USER)[0]
            customers.append(_Customer(user_id, joined, _addresses(entities, user_id, joined, count)))
        return customers

    async def _plan_existing_customers(
        self, conn: AsyncConnection, entities: _Entities, before: datetime
    ) -> list[_Customer]:
        if not self.options.customers:
            return []
        async with _unit(conn):
            found = set((await conn.execute(_KNOWN_USERS, {"ids": list(self.options.customers)})).scalars())
        missing = set(self.options.customers) - set(found)
        if missing:
            raise ValueError(f"unknown customers: {sorted(map(str, missing))}")
        customers = []
        for user_id in self.options.customers:
            joined = _moment(entities.values, before - _ONBOARDING, before)
            addresses = _addresses(entities, user_id, joined, self.options.customer_addresses)
            customers.append(_Customer(user_id, joined, addresses))
        return customers

    async def _plan_products(self, conn: AsyncConnection, entities: _Entities, before: datetime) -> list[Product]:
        draw = entities.products.build
        bodies = await _redraw_taken(conn, [draw() for _ in range(self.options.products)], _TAKEN_SKUS, "sku", draw)
        products = []
        for body in map(_decoded, bodies):
            added = _moment(entities.values, before - _ONBOARDING, before)
            products.append(
                Product(
                    id=entities.values.uuid7(added),
                    **msgspec.structs.asdict(body),
                    is_active=True,
                    created_at=added,
                    updated_at=added,
                )
            )
        return products

    def _shapes(self, key: str, product_weights: list[float]) -> Iterator[_Shape]:
        """The orders' shapes, from their own stream: drawing them twice gives the same shapes both times."""
        values = FakeValues(f"{key}:shapes")
        for _ in range(self.options.orders):
            status = values.order_status()
            picks = _distinct(values, product_weights, values.line_count(len(product_weights)))
            yield _Shape(status, [(index, values.quantity()) for index in picks])

    # -------------------------------------------------------------------------------------------------- writing

    async def _write_customers(
        self, conn: AsyncConnection, users: list[_Customer], existing: list[_Customer], password_hash: str
    ) -> None:
        if self.progress:
            self.progress.start("customers", len(users) + len(existing))
        for batch in _batches(users, self.options.batch_size):
            user_rows: list[tuple[Any, ...]] = []
            role_rows: list[tuple[Any, ...]] = []
            address_rows: list[tuple[Any, ...]] = []
            for customer in batch:
                body = self._registrations[customer.id]
                joined = customer.joined
                user_rows.append((customer.id, body.email.lower(), body.full_name, password_hash, True, joined, joined))
                role_rows.append((customer.id, DEFAULT_ROLE))
                address_rows.extend(_address_row(address) for address in customer.addresses)
            async with _unit(conn) as driver:
                await driver.copy_records_to_table("users", records=user_rows, columns=_USER_COLUMNS)
                await driver.copy_records_to_table("user_roles", records=role_rows, columns=("user_id", "role_name"))
                await driver.copy_records_to_table("addresses", records=address_rows, columns=_ADDRESS_COLUMNS)
            self._committed(users=len(user_rows), addresses=len(address_rows), stage=("customers", len(batch)))
        if existing:
            address_rows = [_address_row(address) for customer in existing for address in customer.addresses]
            async with _unit(conn) as driver:
                # History must not predate its customer: an account younger than its seeded orders is moved back.
                for customer in existing:
                    await conn.execute(_BACKDATE, {"id": customer.id, "at": customer.joined})
                await driver.copy_records_to_table("addresses", records=address_rows, columns=_ADDRESS_COLUMNS)
            self._committed(addresses=len(address_rows), stage=("customers", len(existing)))

    async def _write_products(self, conn: AsyncConnection, products: list[Product]) -> None:
        if self.progress:
            self.progress.start("products", len(products))
        for batch in _batches(products, self.options.batch_size):
            rows = [tuple(getattr(product, column) for column in _PRODUCT_COLUMNS) for product in batch]
            async with _unit(conn) as driver:
                await driver.copy_records_to_table("products", records=rows, columns=_PRODUCT_COLUMNS)
            self._committed(products=len(rows), stage=("products", len(rows)))

    async def _write_orders(
        self,
        conn: AsyncConnection,
        key: str,
        customers: list[_Customer],
        customer_weights: list[float],
        products: list[Product],
        product_weights: list[float],
    ) -> None:
        if self.progress:
            self.progress.start("orders", self.options.orders)
        values = FakeValues(f"{key}:orders")
        snapshots: dict[uuid.UUID, str] = {}
        for shapes in _batches(self._shapes(key, product_weights), self.options.batch_size):
            graphs = []
            for shape in shapes:
                customer = customers[_pick(values, customer_weights)]
                address = values.random.choice(customer.addresses)
                history = values.order_history(
                    shape.status, until=self.options.as_of, span=self.options.span, pending_for=self._payment_window
                )
                status, history = self._after_payment_timeout(shape.status, history)
                lines = [(products[index], quantity) for index, quantity in shape.lines]
                graph = build_order_graph(customer.id, address, lines, status=status, history=history, values=values)
                if address.id not in snapshots:
                    snapshots[address.id] = msgspec.json.encode(graph.order.shipping_address).decode()
                graphs.append(graph)
            await self._write_order_batch(conn, _OrderBatch.of(graphs, snapshots))

    @property
    def _payment_window(self) -> timedelta | None:
        return timedelta(seconds=self.options.payment_ttl) if self.options.payment_ttl else None

    def _after_payment_timeout(
        self, status: OrderStatus, history: list[Transition]
    ) -> tuple[OrderStatus, list[Transition]]:
        """A pending order past its payment deadline, as the payment timeout leaves it (see ``payment_ttl``).

        Its units were counted as sold by the demand pass, so the starting stock covers them while it was pending;
        they come back with the cancellation, and ``initial stock = remaining stock + units sold`` still holds.
        """
        ttl = self.options.payment_ttl
        if status is not OrderStatus.PENDING or not ttl:
            return status, history
        deadline = history[0].at + timedelta(seconds=ttl)
        if deadline > self.options.clock:
            return status, history
        timed_out = Transition(OrderStatus.CANCELLED, OrderStatus.PENDING, deadline, reason=PAYMENT_TIMEOUT)
        return OrderStatus.CANCELLED, [history[0], timed_out]

    async def _write_order_batch(self, conn: AsyncConnection, batch: _OrderBatch) -> None:
        async with _unit(conn) as driver:
            ids = sorted(batch.sold)
            await conn.execute(_LOCK_PRODUCTS, {"ids": ids})
            await conn.execute(
                _TAKE_STOCK, {"ids": ids, "sold": [batch.sold[i] for i in ids], "at": [batch.changed[i] for i in ids]}
            )
            await driver.copy_records_to_table("orders", records=batch.orders, columns=_ORDER_COLUMNS)
            await driver.copy_records_to_table("order_items", records=batch.items, columns=_ITEM_COLUMNS)
            await conn.execute(_OUTBOX_LOCK, {"key": LOCK_KEY})
            last = int(await conn.scalar(LAST_EVENT_ID) or 0)
            rows = [
                (last + n, *event, event.at, event.at + _MAIL_DELAY) for n, event in enumerate(batch.events, start=1)
            ]
            await driver.copy_records_to_table("order_events", records=rows, columns=_EVENT_COLUMNS)
        if self.report.first_event_id is None:
            self.report.first_event_id = last + 1
        self.report.last_event_id = last + len(rows)
        self._committed(
            orders=len(batch.orders), items=len(batch.items), events=len(rows), stage=("orders", len(batch.orders))
        )

    def _committed(self, *, stage: tuple[Stage, int], **counts: int) -> None:
        for name, count in counts.items():
            setattr(self.report, name, getattr(self.report, name) + count)
        if self.progress:
            self.progress.advance(*stage)


@asynccontextmanager
async def _unit(conn: AsyncConnection) -> AsyncIterator[Any]:
    """One batch, atomic: a transaction of its own, or a savepoint if the caller holds a transaction (tests).

    Yields the asyncpg connection underneath, for COPY.
    """
    async with conn.begin_nested() if conn.in_transaction() else conn.begin():
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement it executes, and COPY bypasses
        # it; so one statement goes through SQLAlchemy first. It is a useful one: a seed's commits need not wait for
        # the WAL flush (a crash may lose the last batches, never part of one).
        await conn.execute(text("SET LOCAL synchronous_commit = off"))
        raw = await conn.get_raw_connection()
        yield raw.driver_connection


def _decoded(body: S) -> S:
    """``body`` as the API would receive it: through JSON and msgspec's checks of the request struct's constraints."""
    return msgspec.json.decode(msgspec.json.encode(body), type=type(body))


async def _redraw_taken(
    conn: AsyncConnection, bodies: list[S], query: TextClause, unique: str, draw: Callable[[], S]
) -> list[S]:
    """Replace bodies whose ``unique`` field (email, sku) is already in the database; none on an empty one."""
    pending = bodies
    result = list(bodies)
    while pending:
        async with _unit(conn):
            taken = set((await conn.execute(query, {"values": [getattr(b, unique) for b in pending]})).scalars())
        redrawn = {id(body): draw() for body in pending if getattr(body, unique) in taken}
        result = [redrawn.get(id(body), body) for body in result]
        pending = list(redrawn.values())
    return result


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``itertools.batched`` (Python 3.12) as lists."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _addresses(entities: _Entities, user_id: uuid.UUID, joined: datetime, count: int) -> list[Address]:
    """``count`` addresses, added within an hour of joining."""
    values = entities.values
    rows = []
    for _ in range(count):
        added = joined + timedelta(seconds=values.random.uniform(0, 3600))
        body = _decoded(entities.addresses.build())
        rows.append(
            Address(
                id=values.uuid7(added),
                user_id=user_id,
                **msgspec.structs.asdict(body),
                deleted_at=None,
                created_at=added,
                updated_at=added,
            )
        )
    return rows


def _address_row(address: Address) -> tuple[Any, ...]:
    return tuple(getattr(address, column) for column in _ADDRESS_COLUMNS)


def _salt(key: str) -> bytes:
    """The run's password salt: derived from its key, so the seeded password hash is reproducible too."""
    return hashlib.sha256(f"{key}:password".encode()).digest()[:16]


def _moment(values: FakeValues, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=values.random.uniform(0, (end - start).total_seconds()))


def _cumulative(weights: list[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _pick(values: FakeValues, cumulative: list[float]) -> int:
    """An index drawn with the given (cumulative) weights."""
    return min(bisect.bisect(cumulative, values.random.random() * cumulative[-1]), len(cumulative) - 1)


def _distinct(values: FakeValues, cumulative: list[float], count: int) -> list[int]:
    """``count`` distinct indexes, popular ones more often; uniform when ``count`` is a large share of the catalog
    (drawing by weight until enough distinct ones turn up would take long there)."""
    if count * 4 > len(cumulative):
        return values.random.sample(range(len(cumulative)), count)
    chosen: dict[int, None] = {}
    while len(chosen) < count:
        chosen[_pick(values, cumulative)] = None
    return list(chosen)
