"""The API's request bodies, each with where it goes, who sends it and how a valid one is made (by a factory)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import msgspec

from app.testing.factories import (
    AddressCreateFactory,
    AddressUpdateFactory,
    LoginFactory,
    OrderCreateFactory,
    ProductCreateFactory,
    ProductUpdateFactory,
    RegistrationFactory,
    StatusChangeFactory,
    UserUpdateFactory,
    with_values,
)
from app.testing.values import FakeValues
from tests.property.conftest import World


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[World], str]
    headers: Callable[[World], dict[str, str]]
    make: Callable[[World, FakeValues], msgspec.Struct]
    #: Status codes a valid body may get (a status change can also be refused by the status machine: 409).
    accepted: Collection[int]

    def __str__(self) -> str:
        return self.name

    def body(self, world: World, seed: int) -> dict[str, Any]:
        """A valid body as JSON values (``UNSET`` fields of PATCH bodies are left out)."""
        built: dict[str, Any] = msgspec.to_builtins(self.make(world, FakeValues(seed)))
        return built


def _anyone(_: World) -> dict[str, str]:
    return {}


REGISTER = Endpoint(
    "register",
    "POST",
    lambda w: "/auth/register",
    _anyone,
    lambda w, v: with_values(RegistrationFactory, v).build(),
    {201},
)
LOGIN = Endpoint(
    "login",
    "POST",
    lambda w: "/auth/login",
    _anyone,
    lambda w, v: with_values(LoginFactory, v).build(email=w.customer.email),
    {200},
)
USER_UPDATE = Endpoint(
    "user_update",
    "PATCH",
    lambda w: f"/admin/users/{w.other_user.id}",
    lambda w: w.admin_headers,
    lambda w, v: with_values(UserUpdateFactory, v).build(),
    {200},
)
PRODUCT_CREATE = Endpoint(
    "product_create",
    "POST",
    lambda w: "/products",
    lambda w: w.staff_headers,
    lambda w, v: with_values(ProductCreateFactory, v).build(),
    {201},
)
PRODUCT_UPDATE = Endpoint(
    "product_update",
    "PATCH",
    lambda w: f"/products/{w.products[-1].id}",
    lambda w: w.staff_headers,
    lambda w, v: with_values(ProductUpdateFactory, v).build(),
    {200},
)
ADDRESS_CREATE = Endpoint(
    "address_create",
    "POST",
    lambda w: "/addresses",
    lambda w: w.customer_headers,
    lambda w, v: with_values(AddressCreateFactory, v).build(),
    {201},
)
ADDRESS_UPDATE = Endpoint(
    "address_update",
    "PATCH",
    lambda w: f"/addresses/{w.address.id}",
    lambda w: w.customer_headers,
    lambda w, v: with_values(AddressUpdateFactory, v).build(),
    {200},
)
ORDER_CREATE = Endpoint(
    "order_create",
    "POST",
    lambda w: "/orders",
    lambda w: w.customer_headers,
    lambda w, v: with_values(OrderCreateFactory, v).build(products=w.products, shipping_address_id=w.address.id),
    {201},
)
STATUS_CHANGE = Endpoint(
    "status_change",
    "PATCH",
    lambda w: f"/orders/{w.order_id}/status",
    lambda w: w.staff_headers,
    lambda w, v: with_values(StatusChangeFactory, v).build(),
    {200, 409},
)

ENDPOINTS = (
    REGISTER,
    LOGIN,
    USER_UPDATE,
    PRODUCT_CREATE,
    PRODUCT_UPDATE,
    ADDRESS_CREATE,
    ADDRESS_UPDATE,
    ORDER_CREATE,
    STATUS_CHANGE,
)
