"""A valid body with exactly one validation rule broken is a 422 naming that field, and changes nothing.

Each rule is one constraint of a request struct (a length, a range, a pattern, the country list, the number of order
lines, a quantity, a required or unknown field, a type); hypothesis draws the otherwise-valid body (from a factory)
and the offending value.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.addresses.countries import ISO_3166_ALPHA2
from app.domain.catalog.schemas import MAX_PRICE_CENTS, MAX_STOCK
from app.domain.orders.state_machine import OrderStatus
from tests.property.conftest import World
from tests.property.endpoints import (
    ADDRESS_CREATE,
    ADDRESS_UPDATE,
    LOGIN,
    ORDER_CREATE,
    PRODUCT_CREATE,
    PRODUCT_UPDATE,
    REGISTER,
    STATUS_CHANGE,
    USER_UPDATE,
    Endpoint,
)

Example = Callable[[], AbstractAsyncContextManager[None]]
MISSING = object()  # "leave the field out"

# --- invalid values --------------------------------------------------------------------------------------------


def longer_than(limit: int, *, prefix: str = "", suffix: str = "", fill: str = "x") -> st.SearchStrategy[str]:
    """Strings of ``limit + 1`` to ``limit + 40`` characters that break nothing but the length."""
    return st.integers(limit + 1, limit + 40).map(lambda n: prefix + fill * (n - len(prefix) - len(suffix)) + suffix)


EMPTY = st.just("")
BLANK = st.text(alphabet=" ", min_size=1, max_size=4)
LINE_CONTROL = st.sampled_from([chr(c) for c in (*range(0x20), 0x7F)]).map(lambda c: f"Main{c}Street")
TEXT_CONTROL = st.sampled_from([chr(c) for c in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)]).map(
    lambda c: f"Holds{c}coffee"
)
NOT_A_STRING = st.one_of(st.integers(), st.booleans(), st.lists(st.text(max_size=3), max_size=2))
NOT_AN_INT = st.one_of(
    st.text(max_size=5),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    st.booleans(),
    st.none(),
)
NOT_A_BOOL = st.one_of(st.integers(), st.text(max_size=5), st.none())
NOT_A_UUID = st.one_of(st.text(max_size=12), st.integers())
BAD_SKU = st.one_of(
    st.from_regex(r"\A[-._][A-Za-z0-9]{1,10}\Z"),  # must start with a letter or digit
    st.from_regex(r"\A[A-Z]{2,5}[ /#@äé][0-9]{1,4}\Z"),  # only letters, digits, '.', '_' and '-'
)
BAD_EMAIL = st.one_of(
    st.from_regex(r"\A[a-z0-9.]{3,30}\Z"),  # no @
    st.sampled_from(["ada@example", "ada @example.com", "@example.com", "ada@", "ada@@example.com"]),
)
BAD_COUNTRY = st.one_of(
    st.sampled_from(sorted(ISO_3166_ALPHA2)).map(str.lower),
    st.sampled_from(["UK", "XK", "EU", "ZZ", "AA"]),  # reserved or user-assigned, not official
    st.from_regex(r"\A[A-Z]{3}\Z"),
)
BAD_PHONE = st.one_of(
    st.sampled_from(["call me", "+44 20 abc", "++44 20 7946", "+44 20 7946 0958 ext", "-", "+"]),
    longer_than(32, prefix="+1 ", fill="5"),
)
BAD_STATUS = st.text(max_size=12).filter(lambda s: s not in set(OrderStatus))
ROLES = st.sampled_from(["customer", "staff", "admin"])
TOO_MANY_LINES = st.lists(st.uuids(), min_size=51, max_size=60, unique=True).map(
    lambda ids: [{"product_id": str(i), "quantity": 1} for i in ids]
)
ANY_JSON = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
FIELD_NAME = st.from_regex(r"\A[a-z][a-z_]{0,11}\Z")

# --- rules ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One constraint of one endpoint's body, and how to break it: a bad value, a missing or an unknown field."""

    endpoint: Endpoint
    path: str  # "items[0].quantity"; for an unknown field, the object that gets one ("" for the body itself)
    broken_by: str
    values: st.SearchStrategy[Any] | None = None  # None: an unknown field is added

    def __str__(self) -> str:
        return f"{self.endpoint}:{self.path or 'body'}:{self.broken_by}"

    def apply(self, body: Any, data: st.DataObject) -> tuple[Any, str]:
        """The broken body, and the field its 422 must name."""
        body = copy.deepcopy(body)
        if self.values is None:
            target = _get(body, self.path)
            name = data.draw(FIELD_NAME.filter(lambda n: n not in target), label="unknown field")
            target[name] = data.draw(ANY_JSON, label="its value")
            return body, f"{self.path}.{name}" if self.path else name
        value = data.draw(self.values, label=self.path)
        *parents, last = _steps(self.path)
        container = _get(body, parents)
        if value is MISSING:
            del container[last]
        else:
            container[last] = value
        return body, self.path


def _steps(path: str) -> list[str | int]:
    return [int(step) if step.isdigit() else step for step in re.findall(r"[^.\[\]]+", path)]


def _get(body: Any, path: str | list[str | int]) -> Any:
    for step in _steps(path) if isinstance(path, str) else path:
        body = body[step]
    return body


def missing(endpoint: Endpoint, path: str) -> Rule:
    return Rule(endpoint, path, "missing", st.just(MISSING))


def unknown(endpoint: Endpoint, path: str = "") -> Rule:
    return Rule(endpoint, path, "unknown field")


RULES = (
    # POST /auth/register
    Rule(REGISTER, "email", "no address", BAD_EMAIL),
    Rule(REGISTER, "email", "too long", longer_than(320, suffix="@example.com", fill="a")),
    Rule(REGISTER, "email", "not a string", NOT_A_STRING | st.none()),
    Rule(REGISTER, "password", "too short", st.text(min_size=1, max_size=7)),
    Rule(REGISTER, "password", "too long", longer_than(128)),
    Rule(REGISTER, "full_name", "too long", longer_than(200)),
    Rule(REGISTER, "full_name", "NUL character", st.sampled_from(["\x00", "Ada\x00Lovelace"])),
    missing(REGISTER, "email"),
    missing(REGISTER, "password"),
    unknown(REGISTER),
    # POST /auth/login
    Rule(LOGIN, "email", "empty", EMPTY),
    Rule(LOGIN, "email", "too long", longer_than(320)),
    Rule(LOGIN, "email", "NUL character", st.just("ada\x00@example.com")),
    Rule(LOGIN, "password", "empty", EMPTY),
    Rule(LOGIN, "password", "too long", longer_than(128)),
    missing(LOGIN, "password"),
    unknown(LOGIN),
    # PATCH /admin/users/{id}
    Rule(USER_UPDATE, "roles", "empty", st.just([])),
    Rule(USER_UPDATE, "roles", "too many", st.lists(ROLES, min_size=4, max_size=6)),
    Rule(USER_UPDATE, "roles", "unknown role", st.lists(st.sampled_from(["root", "Admin", "owner"]), min_size=1)),
    Rule(USER_UPDATE, "roles", "not a list", st.sampled_from(["admin", "customer"])),
    Rule(USER_UPDATE, "is_active", "not a boolean", NOT_A_BOOL),
    unknown(USER_UPDATE),
    # POST /products
    Rule(PRODUCT_CREATE, "sku", "empty", EMPTY),
    Rule(PRODUCT_CREATE, "sku", "too long", longer_than(64, fill="A")),
    Rule(PRODUCT_CREATE, "sku", "bad characters", BAD_SKU),
    Rule(PRODUCT_CREATE, "sku", "not a string", NOT_A_STRING | st.none()),
    Rule(PRODUCT_CREATE, "name", "empty", EMPTY),
    Rule(PRODUCT_CREATE, "name", "blank", BLANK),
    Rule(PRODUCT_CREATE, "name", "too long", longer_than(200)),
    Rule(PRODUCT_CREATE, "name", "control character", LINE_CONTROL),
    Rule(PRODUCT_CREATE, "description", "too long", longer_than(5000)),
    Rule(PRODUCT_CREATE, "description", "control character", TEXT_CONTROL),
    Rule(PRODUCT_CREATE, "price_cents", "negative", st.integers(max_value=-1)),
    Rule(PRODUCT_CREATE, "price_cents", "too high", st.integers(MAX_PRICE_CENTS + 1, 2**63 - 1)),
    Rule(PRODUCT_CREATE, "price_cents", "not an integer", NOT_AN_INT),
    Rule(PRODUCT_CREATE, "stock", "negative", st.integers(max_value=-1)),
    Rule(PRODUCT_CREATE, "stock", "too high", st.integers(MAX_STOCK + 1, 2**63 - 1)),
    Rule(PRODUCT_CREATE, "stock", "not an integer", NOT_AN_INT),
    missing(PRODUCT_CREATE, "sku"),
    missing(PRODUCT_CREATE, "name"),
    missing(PRODUCT_CREATE, "price_cents"),
    missing(PRODUCT_CREATE, "stock"),
    unknown(PRODUCT_CREATE),
    # PATCH /products/{id}
    Rule(PRODUCT_UPDATE, "sku", "bad characters", BAD_SKU),
    Rule(PRODUCT_UPDATE, "name", "blank", BLANK),
    Rule(PRODUCT_UPDATE, "name", "null", st.none()),
    Rule(PRODUCT_UPDATE, "price_cents", "negative", st.integers(max_value=-1)),
    Rule(PRODUCT_UPDATE, "stock", "negative", st.integers(max_value=-1)),
    Rule(PRODUCT_UPDATE, "is_active", "not a boolean", NOT_A_BOOL),
    unknown(PRODUCT_UPDATE),
    # POST /addresses
    *(
        rule
        for field, limit in (("recipient_name", 200), ("line1", 200), ("city", 100), ("postal_code", 20))
        for rule in (
            Rule(ADDRESS_CREATE, field, "empty", EMPTY),
            Rule(ADDRESS_CREATE, field, "too long", longer_than(limit)),
            Rule(ADDRESS_CREATE, field, "control character", LINE_CONTROL),
            missing(ADDRESS_CREATE, field),
        )
    ),
    Rule(ADDRESS_CREATE, "line2", "too long", longer_than(200)),
    Rule(ADDRESS_CREATE, "region", "blank", BLANK),
    Rule(ADDRESS_CREATE, "country", "not an official ISO 3166-1 alpha-2 code", BAD_COUNTRY),
    Rule(ADDRESS_CREATE, "country", "not a string", NOT_A_STRING | st.none()),
    missing(ADDRESS_CREATE, "country"),
    Rule(ADDRESS_CREATE, "phone", "not a phone number", BAD_PHONE),
    Rule(ADDRESS_CREATE, "phone", "not a string", NOT_A_STRING),
    unknown(ADDRESS_CREATE),
    # PATCH /addresses/{id}
    Rule(ADDRESS_UPDATE, "country", "not an official ISO 3166-1 alpha-2 code", BAD_COUNTRY),
    Rule(ADDRESS_UPDATE, "city", "null", st.none()),
    Rule(ADDRESS_UPDATE, "line1", "too long", longer_than(200)),
    Rule(ADDRESS_UPDATE, "phone", "not a phone number", BAD_PHONE),
    unknown(ADDRESS_UPDATE),
    # POST /orders
    Rule(ORDER_CREATE, "items", "no lines", st.just([])),
    Rule(ORDER_CREATE, "items", "more than 50 lines", TOO_MANY_LINES),
    Rule(ORDER_CREATE, "items", "not a list", st.one_of(st.none(), st.text(max_size=5), st.just({}))),
    Rule(ORDER_CREATE, "items[0].quantity", "zero or negative", st.integers(max_value=0)),
    Rule(ORDER_CREATE, "items[0].quantity", "over 100", st.integers(101, 2**63 - 1)),
    Rule(ORDER_CREATE, "items[0].quantity", "not an integer", NOT_AN_INT),
    Rule(ORDER_CREATE, "items[0].product_id", "not a UUID", NOT_A_UUID),
    missing(ORDER_CREATE, "items[0].product_id"),
    missing(ORDER_CREATE, "items[0].quantity"),
    unknown(ORDER_CREATE, "items[0]"),
    Rule(ORDER_CREATE, "shipping_address_id", "not a UUID", NOT_A_UUID),
    missing(ORDER_CREATE, "items"),
    missing(ORDER_CREATE, "shipping_address_id"),
    unknown(ORDER_CREATE),
    # PATCH /orders/{id}/status
    Rule(STATUS_CHANGE, "status", "unknown status", BAD_STATUS),
    Rule(STATUS_CHANGE, "status", "not a string", NOT_A_STRING | st.none()),
    missing(STATUS_CHANGE, "status"),
    unknown(STATUS_CHANGE),
)


def names(reported: str, field: str) -> bool:
    """``items`` is named by ``items``, and also by ``items[3]`` or ``items[3].quantity`` (inside it)."""
    return reported == field or reported.startswith((f"{field}[", f"{field}."))


@pytest.mark.parametrize("rule", RULES, ids=str)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), data=st.data())
async def test_a_body_breaking_one_rule_is_422_naming_the_field_and_changes_nothing(
    rule: Rule,
    seed: int,
    data: st.DataObject,
    client: httpx.AsyncClient,
    world: World,
    example: Example,
    fingerprint: Callable[[], Any],
) -> None:
    body, field = rule.apply(rule.endpoint.body(world, seed), data)

    async with example():
        before = await fingerprint()
        response = await client.request(
            rule.endpoint.method, rule.endpoint.path(world), json=body, headers=rule.endpoint.headers(world)
        )
        after = await fingerprint()

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert any(names(error["field"], field) for error in problem["errors"]), (field, problem["errors"])
    assert after == before
