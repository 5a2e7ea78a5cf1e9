"""Public polyfactory factories for the service's models and request bodies.

Importable by other projects' tests (``from app.testing.factories import UserFactory``); nothing here connects to a
database. Values are realistic (:mod:`app.testing.values`) and always satisfy the contract's validation rules, so a
request-body factory's ``build()`` is a body the API accepts (given ids that exist), and a model factory's row is one
the service could have written. Pass keyword arguments to override any field, including with invalid values on
purpose.

Orders are more than a row: :func:`build_order_graph` makes the order, its lines and its event history together,
checked by the rules of ``POST /orders`` and taking the stock from the products it is given, so totals, snapshots,
stock and timelines agree. The seed command builds its orders by the same rules, with the same draws (in a batch
builder of its own, for speed: ``app.testing.seed._OrderBuilder``).

Reproducible data: :func:`seed_factories` seeds every factory here. Only the audit timestamps and the time part of
model ids follow the clock, unless ``seed_factories(seed, now=...)`` pins it too.
"""

from __future__ import annotations

import functools
import itertools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final, NamedTuple, TypeVar, cast

import msgspec
from argon2 import PasswordHasher
from polyfactory import Ignore, Use
from polyfactory.factories.base import BaseFactory
from polyfactory.factories.msgspec_factory import MsgspecFactory
from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory
from polyfactory.field_meta import FieldMeta
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User, user_roles
from app.domain.accounts.schemas import Login, Registration, RoleName, UserUpdate
from app.domain.accounts.services import DEFAULT_ROLE
from app.domain.addresses.models import Address
from app.domain.addresses.schemas import AddressCreate, AddressUpdate
from app.domain.addresses.services import to_address_read
from app.domain.catalog.models import Product
from app.domain.catalog.schemas import ProductCreate, ProductUpdate
from app.domain.orders.models import Order, OrderEvent, OrderItem
from app.domain.orders.schemas import MAX_LINES, MAX_QUANTITY, OrderCreate, OrderLine, StatusChange
from app.domain.orders.state_machine import OrderStatus, can_transition
from app.testing.values import FakeValues, Transition

__all__ = (
    "DEFAULT_PASSWORD",
    "VALUES",
    "AddressCreateFactory",
    "AddressFactory",
    "AddressUpdateFactory",
    "LoginFactory",
    "OrderCreateFactory",
    "OrderEventRow",
    "OrderFactory",
    "OrderGraph",
    "OrderItemFactory",
    "OrderItemRow",
    "OrderLineFactory",
    "OrderRow",
    "ProductCreateFactory",
    "ProductFactory",
    "ProductUpdateFactory",
    "RegistrationFactory",
    "StatusChangeFactory",
    "UserFactory",
    "UserUpdateFactory",
    "build_order_graph",
    "create_user",
    "password_hash_for",
    "seed_factories",
    "shipping_snapshot",
    "with_values",
)

#: The password every factory-made (and every seeded) user has unless told otherwise.
DEFAULT_PASSWORD: Final = "correct-horse-battery"

#: The values every factory here draws from, unless given its own (:func:`with_values`).
VALUES: Final = FakeValues()

F = TypeVar("F", bound=type[BaseFactory[Any]])

#: How far back the default history of :func:`build_order_graph` may start.
_HISTORY_SPAN: Final = timedelta(days=90)
#: A default history's pending order was placed at most this long ago: younger than the contract's default payment
#: window (``ORDER_PAYMENT_TTL``, 30 min), so a worker running in a test does not cancel it.
_PENDING_FOR: Final = timedelta(minutes=10)


@functools.cache
def password_hash_for(password: str, salt: bytes | None = None) -> str:
    """An argon2id hash of ``password`` with the service's parameters (cached: hashing costs ~20 ms).

    ``salt`` (16 bytes) makes the hash reproducible; the seed command derives it from its seed.
    """
    return PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1).hash(password, salt=salt)


def shipping_snapshot(address: Address) -> dict[str, Any]:
    """The ``shipping_address`` an order placed to ``address`` stores: its ``AddressRead`` shape, as JSON values."""
    snapshot: dict[str, Any] = msgspec.to_builtins(to_address_read(address))
    return snapshot


class _Realistic:
    """Mixin of every factory here: realistic values come from ``__values__``; field metadata is derived once.

    polyfactory re-derives a model's field metadata on every ``build()``; for ``AddressCreate`` (whose country is a
    249-code ``Literal``) that was 1.4 ms of a 1.6 ms build. A class's fields never change, so they are cached.
    """

    __values__: ClassVar[FakeValues] = VALUES
    _model_fields: ClassVar[list[FieldMeta] | None] = None

    @classmethod
    def get_model_fields(cls) -> list[FieldMeta]:
        fields: list[FieldMeta] | None = cls.__dict__.get("_model_fields")  # this class's own, never a parent's
        if fields is None:
            fields = cls._model_fields = super().get_model_fields()  # type: ignore[misc]
        return fields


class _Row(_Realistic):
    """Mixin of the model factories: a row as the service inserts it, created now, with a time-ordered UUIDv7 id."""

    __set_relationships__ = False
    __set_foreign_keys__ = False
    __check_model__ = False
    sa_orm_sentinel = Ignore()

    @classmethod
    def id(cls) -> uuid.UUID:
        return cls.__values__.uuid7(cls.__values__.now())

    @classmethod
    def created_at(cls) -> datetime:
        return cls.__values__.now()

    @classmethod
    def updated_at(cls) -> datetime:
        return cls.__values__.now()


# ------------------------------------------------------------------------------------------------------- accounts


class UserFactory(_Row, SQLAlchemyFactory[User]):
    """An active user with a unique, realistic email and :data:`DEFAULT_PASSWORD`; :func:`create_user` adds roles."""

    password_hash = Use(lambda: password_hash_for(DEFAULT_PASSWORD))
    is_active = True
    email_verified = False  # as registration leaves it
    password_changed_at = None

    @classmethod
    def full_name(cls) -> str:
        return cls.__values__.full_name()

    @classmethod
    def email(cls) -> str:
        return cls.__values__.email()


async def create_user(
    session: AsyncSession,
    *,
    roles: Sequence[RoleName] = (DEFAULT_ROLE,),
    password: str = DEFAULT_PASSWORD,
    **overrides: Any,
) -> User:
    """Add a factory-made user with ``roles`` (``user_roles`` rows) to ``session`` and flush; the caller commits."""
    user = UserFactory.build(password_hash=password_hash_for(password), **overrides)
    session.add(user)
    await session.flush()
    if roles:
        await session.execute(insert(user_roles), [{"user_id": user.id, "role_name": role} for role in roles])
    return user


class RegistrationFactory(_Realistic, MsgspecFactory[Registration]):
    """A valid ``POST /auth/register`` body: unique email, a 12-24 character password, usually a full name."""

    @classmethod
    def email(cls) -> str:
        return cls.__values__.email()

    @classmethod
    def password(cls) -> str:
        return cls.__values__.password()

    @classmethod
    def full_name(cls) -> str | None:
        return cls.__values__.full_name() if cls.__values__.random.random() < 0.9 else None


class LoginFactory(_Realistic, MsgspecFactory[Login]):
    """A well-formed ``POST /auth/login`` body; pass the ``email`` of a user made with :data:`DEFAULT_PASSWORD`."""

    password = DEFAULT_PASSWORD

    @classmethod
    def email(cls) -> str:
        return cls.__values__.email()


def _some_of(values: FakeValues, candidates: Mapping[str, Callable[[], Any]], given: dict[str, Any]) -> dict[str, Any]:
    """A PATCH body: a random non-empty subset of ``candidates`` (the rest ``UNSET``), then the caller's overrides."""
    names = list(candidates)
    chosen = set(values.random.sample(names, values.random.randint(1, len(names))))
    return {name: candidates[name]() if name in chosen else msgspec.UNSET for name in names} | given


class UserUpdateFactory(_Realistic, MsgspecFactory[UserUpdate]):
    """A valid ``PATCH /admin/users/{id}`` body changing ``is_active``, ``roles`` or both."""

    @classmethod
    def build(cls, factory_use_construct: bool = False, **kwargs: Any) -> UserUpdate:
        random = cls.__values__.random
        candidates: dict[str, Callable[[], Any]] = {
            "is_active": lambda: random.random() < 0.8,
            "roles": lambda: random.sample(["customer", "staff", "admin"], random.randint(1, 3)),
        }
        return super().build(factory_use_construct, **_some_of(cls.__values__, candidates, kwargs))


# -------------------------------------------------------------------------------------------------------- catalog


class _ProductValues(_Realistic):
    """The realistic product fields shared by :class:`ProductFactory` and :class:`ProductCreateFactory`."""

    @classmethod
    def sku(cls) -> str:
        return cls.__values__.sku()

    @classmethod
    def name(cls) -> str:
        return cls.__values__.product_name()

    @classmethod
    def description(cls) -> str:
        return cls.__values__.description()

    @classmethod
    def price_cents(cls) -> int:
        return cls.__values__.price_cents()

    @classmethod
    def stock(cls) -> int:
        return cls.__values__.stock()


class ProductFactory(_ProductValues, _Row, SQLAlchemyFactory[Product]):
    """An active product in stock: unique ``SKU-ABCD-1234`` sku, realistic name and price, 1-500 units."""

    is_active = True


class ProductCreateFactory(_ProductValues, MsgspecFactory[ProductCreate]):
    """A valid ``POST /products`` body with the same realistic values as :class:`ProductFactory`."""


class ProductUpdateFactory(_Realistic, MsgspecFactory[ProductUpdate]):
    """A valid ``PATCH /products/{id}`` body: a random non-empty subset of the fields."""

    @classmethod
    def build(cls, factory_use_construct: bool = False, **kwargs: Any) -> ProductUpdate:
        values = cls.__values__
        candidates: dict[str, Callable[[], Any]] = {
            "sku": values.sku,
            "name": values.product_name,
            "description": values.description,
            "price_cents": values.price_cents,
            "stock": values.stock,
            "is_active": lambda: values.random.random() < 0.9,
        }
        return super().build(factory_use_construct, **_some_of(values, candidates, kwargs))


# ------------------------------------------------------------------------------------------------------ addresses


class AddressFactory(_Row, SQLAlchemyFactory[Address]):
    """A live address with coherent parts from one of several countries. Pass ``user_id``."""

    deleted_at = None

    @classmethod
    def build(cls, factory_use_construct: bool = False, **kwargs: Any) -> Address:
        return super().build(factory_use_construct, **{**cls.__values__.address(), **kwargs})


class AddressCreateFactory(_Realistic, MsgspecFactory[AddressCreate]):
    """A valid ``POST /addresses`` body."""

    @classmethod
    def build(cls, factory_use_construct: bool = False, **kwargs: Any) -> AddressCreate:
        return super().build(factory_use_construct, **{**cls.__values__.address(), **kwargs})


class AddressUpdateFactory(_Realistic, MsgspecFactory[AddressUpdate]):
    """A valid ``PATCH /addresses/{id}`` body: some fields of another realistic address (``null`` clears optional ones).

    Changing ``country`` alone may leave a postcode of another country's format: valid, as the API only checks each
    field, not that they agree.
    """

    @classmethod
    def build(cls, factory_use_construct: bool = False, **kwargs: Any) -> AddressUpdate:
        values = cls.__values__
        other = values.address()
        candidates = {name: functools.partial(other.__getitem__, name) for name in other}
        return super().build(factory_use_construct, **_some_of(values, candidates, kwargs))


# --------------------------------------------------------------------------------------------------------- orders


def _random_uuid(values: FakeValues) -> uuid.UUID:
    """A UUIDv4 from ``values`` (reproducible), for ids that should point at nothing in particular."""
    return uuid.UUID(int=values.random.getrandbits(128), version=4)


class OrderLineFactory(_Realistic, MsgspecFactory[OrderLine]):
    """One ``items[]`` entry: a random ``product_id`` (pass a real one) and a realistic quantity (1-100, mostly 1-3)."""

    @classmethod
    def product_id(cls) -> uuid.UUID:
        return _random_uuid(cls.__values__)

    @classmethod
    def quantity(cls) -> int:
        return cls.__values__.quantity()


class OrderCreateFactory(_Realistic, MsgspecFactory[OrderCreate]):
    """A valid ``POST /orders`` body: 1-50 lines (about 2.5), each product at most once.

    ``build(products=[...], shipping_address_id=...)`` orders some of the given products (in stock, active ones), no
    more of each than its stock, so the API places it; without ``products`` the ids are random.
    """

    @classmethod
    def shipping_address_id(cls) -> uuid.UUID:
        return _random_uuid(cls.__values__)

    @classmethod
    def items(cls) -> list[OrderLine]:
        values = cls.__values__
        return [
            OrderLine(product_id=_random_uuid(values), quantity=values.quantity())
            for _ in range(values.line_count(MAX_LINES))
        ]

    @classmethod
    def build(
        cls, factory_use_construct: bool = False, *, products: Sequence[Product] | None = None, **kwargs: Any
    ) -> OrderCreate:
        if products is not None and "items" not in kwargs:
            values = cls.__values__
            orderable = [p for p in products if p.is_active and p.stock > 0]
            if not orderable:
                raise ValueError("none of the products is active and in stock")
            chosen = values.random.sample(orderable, values.line_count(len(orderable)))
            kwargs["items"] = [OrderLine(product_id=p.id, quantity=values.quantity(p.stock)) for p in chosen]
        return super().build(factory_use_construct, **kwargs)


class StatusChangeFactory(_Realistic, MsgspecFactory[StatusChange]):
    """A well-formed ``PATCH /orders/{id}/status`` body (whether the move is allowed depends on the order)."""

    @classmethod
    def status(cls) -> OrderStatus:
        return cls.__values__.random.choice(list(OrderStatus))


class OrderItemFactory(_Row, SQLAlchemyFactory[OrderItem]):
    """An order line. ``build(product=p, order_id=...)`` snapshots ``p``'s current name and price."""

    @classmethod
    def product_name(cls) -> str:
        return cls.__values__.product_name()

    @classmethod
    def price_cents(cls) -> int:
        return cls.__values__.price_cents()

    @classmethod
    def quantity(cls) -> int:
        return cls.__values__.quantity()

    @classmethod
    def build(cls, factory_use_construct: bool = False, *, product: Product | None = None, **kwargs: Any) -> OrderItem:
        if product is not None:
            kwargs = {
                "product_id": product.id,
                "product_name": product.name,
                "price_cents": product.price_cents,
            } | kwargs
        return super().build(factory_use_construct, **kwargs)


class OrderFactory(_Row, SQLAlchemyFactory[Order]):
    """An order row whose total and address snapshot agree with what it is given.

    ``build(user_id=..., address=a, items=[...])`` snapshots ``a`` (default: a new address of the user), sums the
    items into ``total_cents`` and points them at the order. For stock and the event history as well, use
    :func:`build_order_graph`.
    """

    status = OrderStatus.PENDING.value

    @classmethod
    def build(
        cls,
        factory_use_construct: bool = False,
        *,
        address: Address | None = None,
        items: Sequence[OrderItem] = (),
        **kwargs: Any,
    ) -> Order:
        if "shipping_address" not in kwargs:
            kwargs["shipping_address"] = shipping_snapshot(
                address or AddressFactory.build(user_id=kwargs.get("user_id"))
            )
        kwargs.setdefault("total_cents", sum(item.price_cents * item.quantity for item in items))
        order = super().build(factory_use_construct, **kwargs)
        for item in items:
            item.order_id = order.id
        return order


class OrderRow(NamedTuple):
    """An ``orders`` row (fields in column order, so the seed can COPY it as is)."""

    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    total_cents: int
    shipping_address: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class OrderItemRow(NamedTuple):
    """An ``order_items`` row."""

    id: uuid.UUID
    order_id: uuid.UUID
    product_id: uuid.UUID
    product_name: str
    price_cents: int
    quantity: int


class OrderEventRow(NamedTuple):
    """An ``order_events`` row as a change writes it: ``event_id`` is assigned later, when it is dispatched."""

    type: str
    order_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    previous_status: str | None
    at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class OrderGraph:
    """Everything placing one order and moving it through its history writes: the order, its lines, its events."""

    order: OrderRow
    items: list[OrderItemRow]
    events: list[OrderEventRow]

    def models(self) -> list[Order | OrderItem | OrderEvent]:
        """ORM objects to ``session.add_all()``: the order first, then its lines and events (which refer to it)."""
        return [
            Order(**self.order._asdict()),
            *(OrderItem(**item._asdict()) for item in self.items),
            *(OrderEvent(**event._asdict()) for event in self.events),
        ]


def build_order_graph(
    user_id: uuid.UUID,
    address: Address,
    lines: Sequence[tuple[Product, int]],
    *,
    status: OrderStatus | str = OrderStatus.PENDING,
    history: Sequence[Transition] | None = None,
    values: FakeValues | None = None,
) -> OrderGraph:
    """An order of ``(product, quantity)`` lines, placed by the user to ``address``, that ended in ``status``.

    Checked like ``POST /orders`` (1-50 lines, quantities 1-100, each product once, active products in stock, the
    user's own live address) and like the status machine; a violation raises ``ValueError``. Lines snapshot each
    product's current name and price; ``total_cents`` is their sum; ``shipping_address`` is the address's
    ``AddressRead`` shape. Stock is taken from the given products in memory (flushed with them if they are attached
    to a session), and not taken for a cancelled order, which gave it back. ``history`` (default: a realistic one
    ending now) sets when each step happened; every step records one event, as the service does.
    """
    values = values or VALUES
    status = OrderStatus(status)
    if history is None:
        history = values.order_history(status, until=values.now(), span=_HISTORY_SPAN, pending_for=_PENDING_FOR)
    _check_order(user_id, address, lines, status, history)
    placed_at = history[0].at
    order_id = values.uuid7(placed_at)
    # Sorted, so the lines read back (ordered by id) in the order they were given, as with the service's ids.
    line_ids = sorted(values.uuid7(placed_at) for _ in lines)
    items = [
        OrderItemRow(line_id, order_id, product.id, product.name, product.price_cents, quantity)
        for line_id, (product, quantity) in zip(line_ids, lines, strict=True)
    ]
    if status is not OrderStatus.CANCELLED:
        for product, quantity in lines:
            product.stock -= quantity
    order = OrderRow(
        id=order_id,
        user_id=user_id,
        status=status.value,
        total_cents=sum(item.price_cents * item.quantity for item in items),
        shipping_address=shipping_snapshot(address),
        created_at=placed_at,
        updated_at=history[-1].at,
    )
    events = [
        OrderEventRow(
            type="order_created" if step.previous is None else "order_status_changed",
            order_id=order_id,
            user_id=user_id,
            status=step.status.value,
            previous_status=step.previous.value if step.previous else None,
            at=step.at,
            reason=step.reason,
        )
        for step in history
    ]
    return OrderGraph(order, items, events)


def _check_order(
    user_id: uuid.UUID,
    address: Address,
    lines: Sequence[tuple[Product, int]],
    status: OrderStatus,
    history: Sequence[Transition],
) -> None:
    if not 1 <= len(lines) <= MAX_LINES:
        raise ValueError(f"an order has 1 to {MAX_LINES} lines, not {len(lines)}")
    if len({product.id for product, _ in lines}) != len(lines):
        raise ValueError("each product may appear only once per order")
    for product, quantity in lines:
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValueError(f"quantity {quantity} of {product.sku} is outside 1..{MAX_QUANTITY}")
        if not product.is_active:
            raise ValueError(f"product {product.sku} is archived")
        if product.stock < quantity:
            raise ValueError(f"only {product.stock} of {product.sku} in stock, {quantity} wanted")
    if address.user_id != user_id or address.deleted_at is not None:
        raise ValueError("the shipping address must be a live address of the user")
    if not history or history[0].previous is not None or history[0].status is not OrderStatus.PENDING:
        raise ValueError("a history starts with the order placed (pending)")
    for before, step in itertools.pairwise(history):
        if step.previous is not before.status or not can_transition(before.status, step.status) or step.at < before.at:
            raise ValueError(f"{before.status} → {step.status} is not a step of the status machine")
    if history[-1].status is not status:
        raise ValueError(f"the history ends in {history[-1].status}, not {status}")


# ------------------------------------------------------------------------------------------------ reproducibility

_FACTORIES: Final[tuple[type[BaseFactory[Any]], ...]] = (
    UserFactory,
    RegistrationFactory,
    LoginFactory,
    UserUpdateFactory,
    ProductFactory,
    ProductCreateFactory,
    ProductUpdateFactory,
    AddressFactory,
    AddressCreateFactory,
    AddressUpdateFactory,
    OrderLineFactory,
    OrderCreateFactory,
    StatusChangeFactory,
    OrderItemFactory,
    OrderFactory,
)


def seed_factories(seed: int, *, now: datetime | None = None) -> None:
    """Make every factory's output reproducible: the same seed gives the same data.

    ``now`` also pins the clock (timestamps and the time part of ids); without it those follow the real time.
    """
    for factory in _FACTORIES:
        factory.seed_random(seed)
    VALUES.reseed(seed, now=now)


def with_values(factory: F, values: FakeValues) -> F:
    """``factory``, drawing every value from ``values`` instead of the shared :data:`VALUES`.

    For a caller that needs its own reproducible stream without disturbing anyone else's (the seed command, or a
    test running next to others that use the shared factories).
    """
    namespace = {
        "__values__": values,
        "__random__": values.random,
        "__faker__": values.faker,
        "__model__": getattr(factory, "__model__"),  # noqa: B009 - the class attribute, not a generic instance one
        "_model_fields": factory.get_model_fields(),  # same model, same fields: not derived again
    }
    return cast("F", type(factory.__name__, (factory,), namespace))
