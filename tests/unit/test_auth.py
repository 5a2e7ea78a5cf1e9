"""``bearer_token`` parsing and the ``requires_permission`` guard, with a fake connection."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from litestar import get

from app.core.auth import Principal, bearer_token, requires_permission
from app.core.errors import AuthenticationFailed, DomainError


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer   abc  ", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Token abc", None),
        ("Bearerabc", None),
    ],
)
def test_bearer_token_extracts_only_bearer_credentials(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@get("/guarded")
async def guarded_route() -> None:
    """The handler the guard is asked about; the permission guard does not look at it."""


def _connection(user: Any) -> Any:
    return SimpleNamespace(scope={"user": user} if user is not None else {})


def _principal(*permissions: str) -> Principal:
    return Principal(id=uuid.uuid4(), email="p@example.com", roles=("staff",), permissions=frozenset(permissions))


def test_guard_lets_a_holder_of_the_permission_through() -> None:
    guard = requires_permission("orders:manage")

    assert guard(_connection(_principal("orders:manage", "products:manage")), guarded_route) is None


def test_guard_refuses_a_principal_without_the_permission_with_403() -> None:
    guard = requires_permission("users:manage")

    with pytest.raises(DomainError) as raised:
        guard(_connection(_principal("orders:manage")), guarded_route)

    assert raised.value.status_code == 403
    assert raised.value.code == "permission_denied"
    assert raised.value.detail == "Permission required: users:manage"


def test_guard_checks_permissions_not_role_names() -> None:
    guard = requires_permission("users:manage")
    named_admin_without_permission = Principal(
        id=uuid.uuid4(), email="p@example.com", roles=("admin",), permissions=frozenset()
    )

    with pytest.raises(DomainError):
        guard(_connection(named_admin_without_permission), guarded_route)


@pytest.mark.parametrize("user", [None, "not-a-principal", SimpleNamespace(id=uuid.uuid4())])
def test_guard_without_a_principal_is_401_not_403(user: Any) -> None:
    guard = requires_permission("users:manage")

    with pytest.raises(AuthenticationFailed) as raised:
        guard(_connection(user), guarded_route)

    assert raised.value.status_code == 401
    assert raised.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_guard_is_named_for_its_permission() -> None:
    assert requires_permission("users:manage").__name__ == "requires_users_manage"
