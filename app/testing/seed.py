"""Bulk, realistic, reproducible data: what ``litestar seed`` and the dev command's first start write.

How a run works
    1. **Plan** (nothing written): users from :class:`RegistrationFactory` (all with :data:`DEFAULT_PASSWORD`,
       hashed once), 1-3 addresses each from :class:`AddressCreateFactory`, products from
       :class:`ProductCreateFactory`. Every body goes through the API's own decoder (``msgspec`` with the request
       struct's constraints), so nothing the API would refuse gets in. Emails and skus already in the database are
       drawn again.
    2. **Orders, planned**: every order is drawn before anything is written — its shape (products, quantities and
       final status), customer, address and history — and kept compactly (:class:`_Plan`), to learn how many units
       of each product will be sold. A product starts with that many plus the stock it should have left (the
       factory's draw, or none for about one product in twelve), so it never runs short and ends with
       ``stock >= 0``, and ``initial stock = remaining stock + units sold`` (sold = non-cancelled lines).
       :attr:`Seeder.initial_stock` keeps the starting stock of each product.
    3. **Customers and products** are written with COPY, one transaction per batch.
    4. **Orders, written** in the order they were placed (so the indexes grow at their right edge; see
       :class:`_Plan`), built by the rules, values and draws of :func:`~app.testing.factories.build_order_graph`
       (``POST /orders``'s checks, snapshots, total, stock, one event per step of its history) in a batch builder
       of its own (:class:`_OrderBuilder`, for speed). One transaction per batch holds its orders, lines, events
       and the stock they took, so a Ctrl-C loses at most the batch in flight, and what committed is consistent.

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
from array import array
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol, TypeVar

import msgspec
from asyncpg.pgproto import pgproto
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.accounts.schemas import Registration
from app.domain.accounts.services import DEFAULT_ROLE
from app.domain.addresses.models import Address
from app.domain.catalog.models import Product
from app.domain.orders.events import EVENT_COLUMNS
from app.domain.orders.schemas import MAX_LINES, MAX_QUANTITY
from app.domain.orders.state_machine import PAYMENT_TIMEOUT, OrderStatus
from app.events.outbox import LAST_EVENT_ID, LOCK_KEY
from app.testing.factories import (
    DEFAULT_PASSWORD,
    AddressCreateFactory,
    ProductCreateFactory,
    RegistrationFactory,
    password_hash_for,
    shipping_snapshot,
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
_STATUSES: Final = tuple(OrderStatus)
_MILLIS: Final = 2**48 - 1
_RAND_B: Final = 2**62 - 1
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


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
    items: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]  # the columns after ``event_id``, in the order they get their event ids
    sold: dict[uuid.UUID, int]  # units taken per product (a cancelled order's came back: 0)
    changed: dict[uuid.UUID, datetime]  # when each product's stock last changed


class _Plan:
    """Every order drawn before anything is written: its shape, customer, address and history, in ``array``s.

    Orders are written in the order they were placed (:meth:`chronological`), so every index on ``orders``,
    ``order_items`` and ``order_events`` (ids are UUIDv7 of the placement time, and most indexes lead with a time or
    with those ids) grows at its right edge instead of at random places. Random inserts into indexes that outgrow the
    shared buffers (~1 GB of them at a million orders, 128 MB of buffers) made PostgreSQL's work per order grow with
    the tables: 10 s of its CPU for 100,000 orders, 35 s for 300,000; in placement order 9 s and 28 s.
    Kept as ``array``s, an order takes ~80 bytes (~300 as objects); times are microseconds since the epoch.
    """

    __slots__ = (
        "_addresses", "_customers", "_ends", "_indexes", "_path_ids", "_path_of", "_paths", "_quantities",
        "_statuses", "_time_ends", "_times",
    )  # fmt: skip

    def __init__(self) -> None:
        self._statuses = bytearray()  # the shape's status (before a payment timeout)
        self._customers = array("l")
        self._addresses = array("l")
        self._ends = array("q")
        self._indexes = array("l")
        self._quantities = array("b")
        self._paths: list[tuple[tuple[OrderStatus, OrderStatus | None, str | None], ...]] = []
        self._path_ids: dict[tuple[tuple[OrderStatus, OrderStatus | None, str | None], ...], int] = {}
        self._path_of = bytearray()
        self._times = array("q")
        self._time_ends = array("q")

    def __len__(self) -> int:
        return len(self._statuses)

    def append(self, shape: _Shape, customer: int, address: int, history: list[Transition]) -> None:
        self._statuses.append(_STATUSES.index(shape.status))
        self._customers.append(customer)
        self._addresses.append(address)
        for index, quantity in shape.lines:
            self._indexes.append(index)
            self._quantities.append(quantity)
        self._ends.append(len(self._indexes))
        path = tuple((step.status, step.previous, step.reason) for step in history)
        path_id = self._path_ids.get(path)
        if path_id is None:
            path_id = self._path_ids[path] = len(self._paths)
            self._paths.append(path)
        self._path_of.append(path_id)
        self._times.extend((step.at - _EPOCH) // _MICROSECOND for step in history)
        self._time_ends.append(len(self._times))

    def chronological(self) -> list[int]:
        """The orders' positions, by the time they were placed (the sort is stable: ties keep the drawing order)."""
        times, ends = self._times, self._time_ends
        return sorted(range(len(self)), key=lambda n: times[ends[n - 1] if n else 0])

    def shape(self, n: int) -> _Shape:
        """Order ``n``'s shape, with the status it was drawn with (a pending one may have timed out since)."""
        start = self._ends[n - 1] if n else 0
        end = self._ends[n]
        lines = list(zip(self._indexes[start:end], self._quantities[start:end], strict=True))
        return _Shape(_STATUSES[self._statuses[n]], lines)

    def order(self, n: int) -> tuple[int, int, list[tuple[int, int]], int, list[datetime]]:
        """Order ``n``: its customer and the customer's address (positions), lines, path (see :meth:`path`) and the
        time of each of its steps."""
        start = self._time_ends[n - 1] if n else 0
        times = [_EPOCH + timedelta(microseconds=at) for at in self._times[start : self._time_ends[n]]]
        return self._customers[n], self._addresses[n], self.shape(n).lines, self._path_of[n], times

    def path(self, path: int) -> tuple[tuple[OrderStatus, OrderStatus | None, str | None], ...]:
        """The steps of a history: ``(status, previous, reason)`` each (there are only a handful of different ones)."""
        return self._paths[path]

    def history(self, n: int) -> list[Transition]:
        """Order ``n``'s history, as :meth:`FakeValues.order_history` drew it (with its payment timeout, if any)."""
        *_, path, times = self.order(n)
        steps = self.path(path)
        return [
            Transition(status, previous, at, reason)
            for (status, previous, reason), at in zip(steps, times, strict=True)
        ]


class _OrderBuilder:
    """Builds a batch's COPY records from the plan, by :func:`build_order_graph`'s rules and with its draws (the ids,
    from ``values``), without its per-order objects.

    ``build_order_graph`` is the public, checked way to make one order; at a million orders its per-order costs were
    most of the run's Python time: ``Product``/``Address`` ORM attribute reads (~3 M), an ``AddressRead`` snapshot per
    order, ``uuid.UUID`` construction (~3 µs each, and asyncpg encodes it through ``.bytes``), ``NamedTuple`` rows
    and the full request check. Here the products are plain tuples, the snapshot is made once per address, ids are
    asyncpg's own ``UUID`` (equal to and hashing like ``uuid.UUID``, built and encoded in C), and only what the plan
    does not already guarantee is checked: quantities in range, and stock never below zero (the shapes' product
    indexes are distinct by construction, the products active, the addresses the customer's own and the histories
    drawn by :meth:`FakeValues.order_history`). A test holds it to ``build_order_graph``'s rows.
    """

    def __init__(self, values: FakeValues, plan: _Plan, customers: list[_Customer], products: list[Product]) -> None:
        self._values = values
        self._plan = plan
        self._customers = customers
        self._customer_ids = [_pg_uuid(customer.id) for customer in customers]
        self._products = [(_pg_uuid(p.id), p.name, p.price_cents, p.sku) for p in products]
        self._stock = [product.stock for product in products]
        self._snapshots: dict[uuid.UUID, str] = {}
        self._paths: dict[int, tuple[str, bool, list[tuple[str, str, str | None, str | None]]]] = {}

    def batch(self, positions: list[int]) -> _OrderBatch:
        """The orders at these positions of the plan, in this order (the order they were placed)."""
        customers, products, stock = self._customers, self._products, self._stock
        getrandbits = self._values.random.getrandbits
        built = []
        for position in positions:
            customer_index, address_index, lines, path, times = self._plan.order(position)
            address = customers[customer_index].addresses[address_index]
            user_id = self._customer_ids[customer_index]
            status, cancelled, steps = self._path(path)
            if not 1 <= len(lines) <= MAX_LINES:
                raise ValueError(f"an order has 1 to {MAX_LINES} lines, not {len(lines)}")
            for index, quantity in lines:
                if not 1 <= quantity <= MAX_QUANTITY:
                    raise ValueError(f"quantity {quantity} of {products[index][3]} is outside 1..{MAX_QUANTITY}")
                if stock[index] < quantity:
                    raise ValueError(f"only {stock[index]} of {products[index][3]} in stock, {quantity} wanted")
            placed_at, changed_at = times[0], times[-1]
            millis = (int(placed_at.timestamp() * 1000) & _MILLIS) << 80
            order_id = _pg_uuid_of(millis | _uuid7_bits(getrandbits(74)))
            line_ids = sorted(millis | _uuid7_bits(getrandbits(74)) for _ in lines)
            items = []
            total = 0
            for line_id, (index, quantity) in zip(line_ids, lines, strict=True):
                product_id, name, price, _ = products[index]
                items.append((_pg_uuid_of(line_id), order_id, product_id, name, price, quantity))
                total += price * quantity
                if not cancelled:
                    stock[index] -= quantity
            order = (order_id, user_id, status, total, self._snapshot(address), placed_at, changed_at)
            events = [
                (kind, order_id, user_id, to, before, at, reason, at, at + _MAIL_DELAY)
                for (kind, to, before, reason), at in zip(steps, times, strict=True)
            ]
            built.append((order, items, events, changed_at if cancelled else placed_at, cancelled))
        built.sort(key=_placed_at)
        sold: dict[uuid.UUID, int] = {}
        changed: dict[uuid.UUID, datetime] = {}
        for _, items, _, moment, cancelled in built:
            for item in items:
                product_id = item[2]
                sold[product_id] = sold.get(product_id, 0) + (0 if cancelled else item[5])
                previous = changed.get(product_id)
                if previous is None or moment > previous:
                    changed[product_id] = moment
        # Event ids follow the events' times within the batch (the sort is stable: each order's steps stay in order).
        events = sorted((event for _, _, order_events, _, _ in built for event in order_events), key=_event_at)
        return _OrderBatch(
            [order for order, *_ in built], [item for _, items, *_ in built for item in items], events, sold, changed
        )

    def _path(self, path: int) -> tuple[str, bool, list[tuple[str, str, str | None, str | None]]]:
        """A history's final status, whether it is cancelled, and its events' ``(type, status, previous, reason)``."""
        made = self._paths.get(path)
        if made is None:
            steps = self._plan.path(path)
            events = [
                (
                    "order_created" if previous is None else "order_status_changed",
                    status.value,
                    previous.value if previous else None,
                    reason,
                )
                for status, previous, reason in steps
            ]
            final = steps[-1][0]
            made = self._paths[path] = (final.value, final is OrderStatus.CANCELLED, events)
        return made

    def _snapshot(self, address: Address) -> str:
        """The order's ``shipping_address`` (``AddressRead`` as JSON), made once per address."""
        snapshot = self._snapshots.get(address.id)
        if snapshot is None:
            snapshot = self._snapshots[address.id] = msgspec.json.encode(shipping_snapshot(address)).decode()
        return snapshot


def _placed_at(built: tuple[Any, ...]) -> datetime:
    placed: datetime = built[0][5]
    return placed


def _event_at(event: tuple[Any, ...]) -> datetime:
    at: datetime = event[5]
    return at


def _uuid7_bits(bits: int) -> int:
    """A UUIDv7's version, variant and random bits (:meth:`FakeValues.uuid7`'s layout), without its timestamp."""
    return (0x7 << 76) | ((bits >> 62) << 64) | (0b10 << 62) | (bits & _RAND_B)


def _pg_uuid_of(value: int) -> uuid.UUID:
    made: uuid.UUID = pgproto.UUID(value.to_bytes(16, "big"))
    return made


def _pg_uuid(value: uuid.UUID) -> uuid.UUID:
    return _pg_uuid_of(value.int)


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

        plan = self._plan_orders(key, customers, customer_weights, product_weights)
        order = plan.chronological()
        # Orders are written in the order they were placed. A cancelled order held its units until it was cancelled:
        # at its place in that sequence the product must have them too (they come back afterwards), so the starting
        # stock covers that peak as well. (A pending order that timed out counts as sold here: it held its units.)
        sold = [0] * len(products)
        peak = [0] * len(products)
        for position in order:
            shape = plan.shape(position)
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
        await self._write_orders(conn, _OrderBuilder(FakeValues(f"{key}:ids"), plan, customers, products), order)

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
        """The orders' shapes, from their own stream (so the other streams' draws do not change them)."""
        values = FakeValues(f"{key}:shapes")
        for _ in range(self.options.orders):
            status = values.order_status()
            picks = _distinct(values, product_weights, values.line_count(len(product_weights)))
            yield _Shape(status, [(index, values.quantity()) for index in picks])

    def _plan_orders(
        self, key: str, customers: list[_Customer], customer_weights: list[float], product_weights: list[float]
    ) -> _Plan:
        """Every order's shape, then its customer, address and history (from a stream of their own)."""
        values = FakeValues(f"{key}:orders")
        choose = values.random.randrange
        as_of, span = self.options.as_of, self.options.span
        plan = _Plan()
        for shape in self._shapes(key, product_weights):
            customer = _pick(values, customer_weights)
            address = choose(len(customers[customer].addresses))
            history = values.order_history(shape.status, until=as_of, span=span, pending_for=self._payment_window)
            _, history = self._after_payment_timeout(shape.status, history)
            plan.append(shape, customer, address, history)
        return plan

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

    async def _write_orders(self, conn: AsyncConnection, builder: _OrderBuilder, order: list[int]) -> None:
        """The planned orders in batches, in the order they were placed.

        Building the next batch in a thread while the last one was written was no faster here (2 cores, shared: in
        A/B runs at 100,000 orders 18.1-18.2 s against 16.7-19.2 s, and ~0.5 s more CPU), so batches take turns.
        """
        if self.progress:
            self.progress.start("orders", self.options.orders)
        for positions in _batches(order, self.options.batch_size):
            await self._write_order_batch(conn, builder.batch(positions))

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
            rows = [(n, *event) for n, event in enumerate(batch.events, start=last + 1)]
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
