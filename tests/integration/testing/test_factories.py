"""The public factories: valid under the contract's rules, reproducible, and orders whose parts agree."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from polyfactory.factories.base import BaseFactory
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import PROJECT_ROOT
from app.domain.accounts.schemas import Registration
from app.domain.addresses.schemas import AddressCreate
from app.domain.catalog.models import Product
from app.domain.catalog.schemas import ProductCreate
from app.domain.orders.state_machine import OrderStatus
from app.testing.factories import (
    AddressCreateFactory,
    AddressFactory,
    AddressUpdateFactory,
    LoginFactory,
    OrderCreateFactory,
    OrderFactory,
    OrderItemFactory,
    OrderLineFactory,
    ProductCreateFactory,
    ProductFactory,
    ProductUpdateFactory,
    RegistrationFactory,
    StatusChangeFactory,
    UserFactory,
    UserUpdateFactory,
    build_order_graph,
    create_user,
    seed_factories,
    shipping_snapshot,
    with_values,
)
from app.testing.values import FakeValues, Transition
from tests.support import AuthHeaders

REQUEST_FACTORIES: list[type[BaseFactory[Any]]] = [
    RegistrationFactory,
    LoginFactory,
    UserUpdateFactory,
    ProductCreateFactory,
    ProductUpdateFactory,
    AddressCreateFactory,
    AddressUpdateFactory,
    OrderLineFactory,
    OrderCreateFactory,
    StatusChangeFactory,
]
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def decoded(body: msgspec.Struct) -> msgspec.Struct:
    """What the API's decoder makes of the body (raises on any broken constraint)."""
    return msgspec.json.decode(msgspec.json.encode(body), type=type(body))


@pytest.mark.parametrize("factory", REQUEST_FACTORIES, ids=lambda f: f.__name__)
def test_request_factories_make_bodies_the_api_decoder_accepts(factory: type[BaseFactory[Any]]) -> None:
    for seed in range(40):
        body = with_values(factory, FakeValues(seed)).build()
        assert decoded(body) == body


def test_model_factories_make_rows_the_request_rules_allow() -> None:
    for _ in range(40):
        user, product, address = UserFactory.build(), ProductFactory.build(), AddressFactory.build(user_id=uuid.uuid4())
        decoded(Registration(email=user.email, password="long-enough", full_name=user.full_name))
        fields = ("sku", "name", "price_cents", "stock", "description")
        decoded(ProductCreate(**{name: getattr(product, name) for name in fields}))
        decoded(AddressCreate(**{name: getattr(address, name) for name in AddressCreate.__struct_fields__}))
        assert re.fullmatch(r"SKU-[A-Z]{4}-\d{4}", product.sku)
        assert product.is_active
        assert product.stock > 0
        assert uuid.UUID(str(user.id)).version == 7


def test_the_same_seed_gives_the_same_data() -> None:
    def made() -> list[dict[str, Any]]:
        rows = [UserFactory.build(), ProductFactory.build(), AddressFactory.build(user_id=uuid.UUID(int=1))]
        bodies = [factory.build() for factory in REQUEST_FACTORIES]
        return [{k: v for k, v in vars(row).items() if not k.startswith("_")} for row in rows] + [
            msgspec.to_builtins(body) for body in bodies
        ]

    seed_factories(11, now=NOW)
    first = made()
    seed_factories(11, now=NOW)
    second = made()
    seed_factories(12, now=NOW)
    other = made()
    seed_factories(secrets.randbits(32))  # unpin the clock and move on to a fresh stream for the other tests

    assert first == second
    assert first != other


def test_values_do_not_depend_on_the_process() -> None:
    """Same seed, same values in another process: no value may depend on hash order (Faker keeps some data in sets)."""
    script = (
        "import hashlib\n"
        "from app.testing.values import FakeValues\n"
        "v = FakeValues(1)\n"
        "made = [v.address() for _ in range(300)] + [(v.email(), v.full_name(), v.description()) for _ in range(30)]\n"
        "print(hashlib.sha256(repr(made).encode()).hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in (1, 2)
    }
    assert len(digests) == 1


def test_with_values_draws_from_its_own_source_and_leaves_the_shared_one_alone() -> None:
    seed_factories(3)
    expected = [ProductCreateFactory.build() for _ in range(2)]
    seed_factories(3)
    ProductCreateFactory.build()
    private = with_values(ProductCreateFactory, FakeValues(99)).build()
    assert ProductCreateFactory.build() == expected[1]
    assert private == with_values(ProductCreateFactory, FakeValues(99)).build()
    seed_factories(secrets.randbits(32))  # a fresh stream for the other tests, as above


# --- orders ------------------------------------------------------------------------------------------------------


def _shop(stock: int = 10) -> tuple[uuid.UUID, Any, list[Product]]:
    user_id = uuid.uuid4()
    return user_id, AddressFactory.build(user_id=user_id), [ProductFactory.build(stock=stock) for _ in range(3)]


@pytest.mark.parametrize("status", list(OrderStatus))
def test_an_order_graph_agrees_with_itself_and_takes_stock_unless_cancelled(status: OrderStatus) -> None:
    user_id, address, (mug, tea, _) = _shop(stock=10)

    graph = build_order_graph(user_id, address, [(mug, 2), (tea, 3)], status=status)

    order = graph.order
    assert order.status == status.value
    assert order.total_cents == 2 * mug.price_cents + 3 * tea.price_cents
    assert [(i.product_name, i.price_cents, i.quantity) for i in graph.items] == [
        (mug.name, mug.price_cents, 2),
        (tea.name, tea.price_cents, 3),
    ]
    assert all(item.order_id == order.id for item in graph.items)
    assert order.shipping_address == shipping_snapshot(address)
    assert graph.events[0].type == "order_created"
    assert graph.events[-1].status == status.value
    assert (order.created_at, order.updated_at) == (graph.events[0].at, graph.events[-1].at)
    taken = 0 if status is OrderStatus.CANCELLED else 1
    assert (mug.stock, tea.stock) == (10 - 2 * taken, 10 - 3 * taken)


def _history(*steps: str) -> list[Transition]:
    history, previous = [], None
    for n, step in enumerate(steps):
        history.append(Transition(OrderStatus(step), previous, NOW + timedelta(hours=n)))
        previous = OrderStatus(step)
    return history


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("no lines", {"lines": []}),
        ("51 lines", {"lines": "many"}),
        ("the same product twice", {"lines": "twice"}),
        ("quantity 0", {"quantity": 0}),
        ("quantity 101", {"quantity": 101}),
        ("more than in stock", {"quantity": 11}),
        ("an archived product", {"archived": True}),
        ("someone else's address", {"address_owner": uuid.uuid4()}),
        ("a deleted address", {"deleted": True}),
        ("a history that skips paid", {"history": _history("pending", "shipped")}),
        ("a history ending elsewhere", {"history": _history("pending", "paid")}),
    ],
)
def test_an_order_graph_refuses_what_the_api_refuses(case: str, change: dict[str, Any]) -> None:
    user_id, address, products = _shop(stock=10)
    lines: Any = [(products[0], change.get("quantity", 1))]
    if change.get("lines") == "many":
        lines = [(ProductFactory.build(), 1) for _ in range(51)]
    elif change.get("lines") == "twice":
        lines = [(products[0], 1), (products[0], 2)]
    elif "lines" in change:
        lines = change["lines"]
    products[0].is_active = not change.get("archived", False)
    address.user_id = change.get("address_owner", user_id)
    address.deleted_at = NOW if change.get("deleted") else None

    with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the rule
        build_order_graph(user_id, address, lines, status=OrderStatus.SHIPPED, history=change.get("history"))
    assert products[0].stock == 10  # nothing taken


def test_order_and_item_factories_keep_total_and_snapshots() -> None:
    user_id, address, (mug, tea, _) = _shop()

    items = [OrderItemFactory.build(product=mug, quantity=2), OrderItemFactory.build(product=tea)]
    order = OrderFactory.build(user_id=user_id, address=address, items=items)

    assert order.total_cents == sum(item.price_cents * item.quantity for item in items)
    assert order.shipping_address == shipping_snapshot(address)
    assert all(item.order_id == order.id for item in items)
    assert (items[0].product_id, items[0].product_name, items[0].price_cents) == (mug.id, mug.name, mug.price_cents)


def test_an_order_create_body_for_products_orders_what_is_in_stock() -> None:
    _, address, products = _shop(stock=2)
    products[1].stock = 0

    for seed in range(30):
        body = with_values(OrderCreateFactory, FakeValues(seed)).build(
            products=products, shipping_address_id=address.id
        )
        assert products[1].id not in {line.product_id for line in body.items}
        assert all(1 <= line.quantity <= 2 for line in body.items)


async def test_a_persisted_order_graph_reads_back_through_the_api(
    client: httpx.AsyncClient, db: AsyncSession, auth_headers: AuthHeaders
) -> None:
    customer = await create_user(db)
    address = AddressFactory.build(user_id=customer.id)
    mug, tea = ProductFactory.build(stock=5), ProductFactory.build(stock=5)
    db.add_all([address, mug, tea])
    await db.flush()
    graph = build_order_graph(customer.id, address, [(mug, 2), (tea, 1)], status="paid")
    db.add_all(graph.models())
    await db.commit()

    response = await client.get(f"/orders/{graph.order.id}", headers=auth_headers(customer))

    assert response.status_code == 200, response.text
    order = response.json()
    assert (order["status"], order["total_cents"]) == ("paid", graph.order.total_cents)
    assert order["shipping_address"] == graph.order.shipping_address
    assert [line["product_name"] for line in order["items"]] == [item.product_name for item in graph.items]
    stock = dict((await db.execute(select(Product.id, Product.stock).where(Product.id.in_([mug.id, tea.id])))).all())
    assert stock == {mug.id: 3, tea.id: 4}
