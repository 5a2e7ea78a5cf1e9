"""/admin/users: guarded by ``users:manage``; lists, filters and pages users; changes roles and activation."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.accounts.credentials import log_in, refresh, refresh_token_of

PAGE_FIELDS = {"items", "total", "page", "per_page", "pages"}


def _marker() -> str:
    return uuid.uuid4().hex[:10]


async def test_admin_users_without_token_is_401_not_403(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/users")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_admin_users_as_customer_is_403_naming_the_permission(
    client: httpx.AsyncClient, make_user, auth_headers
) -> None:
    customer = await make_user(roles=("customer",))

    response = await client.get("/admin/users", headers=auth_headers(customer))

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["detail"] == "Permission required: users:manage"
    assert body["code"] == "permission_denied"


async def test_admin_users_as_staff_is_403(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    staff = await make_user(roles=("staff",))

    response = await client.get("/admin/users", headers=auth_headers(staff))

    assert response.status_code == 403
    assert response.json()["detail"] == "Permission required: users:manage"


async def test_patch_user_as_staff_is_403(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    staff, target = await make_user(roles=("staff",)), await make_user()

    response = await client.patch(f"/admin/users/{target.id}", json={"roles": ["admin"]}, headers=auth_headers(staff))

    assert response.status_code == 403


async def test_admin_users_as_admin_is_a_page_of_users(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    admin = await make_user(roles=("admin",))

    response = await client.get("/admin/users", headers=auth_headers(admin))

    assert response.status_code == 200
    page = response.json()
    assert set(page) == PAGE_FIELDS
    assert page["page"] == 1
    assert page["per_page"] == 20
    assert page["total"] >= 1
    assert str(admin.id) in {u["id"] for u in page["items"]}
    assert all("password_hash" not in u for u in page["items"])


async def test_admin_users_lists_newest_first(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    admin = await make_user(roles=("admin",))
    marker = _marker()
    made = [await make_user(full_name=f"Ordered {marker} {i}") for i in range(3)]

    response = await client.get("/admin/users", params={"q": marker}, headers=auth_headers(admin))

    assert [u["id"] for u in response.json()["items"]] == [str(u.id) for u in reversed(made)]


async def test_admin_users_q_matches_email(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    admin = await make_user(roles=("admin",))
    marker = _marker()
    wanted = await make_user(email=f"grace.{marker}@example.com")
    await make_user()

    response = await client.get("/admin/users", params={"q": marker.upper()}, headers=auth_headers(admin))

    body = response.json()
    assert [u["id"] for u in body["items"]] == [str(wanted.id)]
    assert body["total"] == 1


async def test_admin_users_q_matches_full_name(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    admin = await make_user(roles=("admin",))
    marker = _marker()
    wanted = await make_user(full_name=f"Grace Hopper {marker}")
    await make_user()

    response = await client.get("/admin/users", params={"q": f"hopper {marker}"}, headers=auth_headers(admin))

    assert [u["id"] for u in response.json()["items"]] == [str(wanted.id)]


@pytest.mark.parametrize("wildcard", ["%", "_"])
async def test_admin_users_q_treats_like_wildcards_literally(
    client: httpx.AsyncClient, make_user, auth_headers, wildcard
) -> None:
    admin = await make_user(roles=("admin",))
    marker = _marker()
    literal = await make_user(full_name=f"Percent {marker[:5]}{wildcard}{marker[5:]}")
    await make_user(full_name=f"Plain {marker[:5]}x{marker[5:]}")

    response = await client.get(
        "/admin/users", params={"q": f"{marker[:5]}{wildcard}{marker[5:]}"}, headers=auth_headers(admin)
    )

    assert [u["id"] for u in response.json()["items"]] == [str(literal.id)]


async def test_admin_users_pages_count_is_ceiling(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    admin = await make_user(roles=("admin",))
    marker = _marker()
    for i in range(3):
        await make_user(full_name=f"Paged {marker} {i}")

    first = (await client.get("/admin/users", params={"q": marker, "per_page": 2}, headers=auth_headers(admin))).json()
    second = (
        await client.get("/admin/users", params={"q": marker, "per_page": 2, "page": 2}, headers=auth_headers(admin))
    ).json()

    assert (first["total"], first["pages"], first["per_page"], len(first["items"])) == (3, 2, 2, 2)
    assert (second["page"], len(second["items"])) == (2, 1)
    assert {u["id"] for u in first["items"]}.isdisjoint(u["id"] for u in second["items"])


@pytest.mark.parametrize(
    ("params", "field"),
    [({"per_page": 0}, "per_page"), ({"per_page": 101}, "per_page"), ({"page": 0}, "page")],
)
async def test_admin_users_out_of_range_paging_is_422(
    client: httpx.AsyncClient, make_user, auth_headers, params, field
) -> None:
    admin = await make_user(roles=("admin",))

    response = await client.get("/admin/users", params=params, headers=auth_headers(admin))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_patch_roles_changes_the_users_permissions(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    admin, user = await make_user(roles=("admin",)), await make_user()

    response = await client.patch(f"/admin/users/{user.id}", json={"roles": ["staff"]}, headers=auth_headers(admin))

    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["staff"]
    assert response.json()["permissions"] == ["orders:manage", "products:manage"]
    me = (await client.get("/auth/me", headers=auth_headers(user))).json()
    assert me["permissions"] == ["orders:manage", "products:manage"]


async def test_promoted_user_gains_access_on_the_next_request(
    client: httpx.AsyncClient, make_user, auth_headers
) -> None:
    admin, user = await make_user(roles=("admin",)), await make_user()
    headers = auth_headers(user)
    assert (await client.get("/admin/users", headers=headers)).status_code == 403

    await client.patch(f"/admin/users/{user.id}", json={"roles": ["admin"]}, headers=auth_headers(admin))

    assert (await client.get("/admin/users", headers=headers)).status_code == 200


async def test_patch_unknown_user_is_404(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    admin = await make_user(roles=("admin",))

    response = await client.patch(
        f"/admin/users/{uuid.uuid4()}", json={"roles": ["staff"]}, headers=auth_headers(admin)
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_patch_with_unknown_role_is_422_and_changes_nothing(
    client: httpx.AsyncClient, make_user, auth_headers
) -> None:
    admin, user = await make_user(roles=("admin",)), await make_user()

    response = await client.patch(f"/admin/users/{user.id}", json={"roles": ["superuser"]}, headers=auth_headers(admin))

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "roles[0]"
    assert (await client.get("/auth/me", headers=auth_headers(user))).json()["roles"] == ["customer"]


async def test_patch_with_unknown_field_is_422(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    admin, user = await make_user(roles=("admin",)), await make_user()

    response = await client.patch(
        f"/admin/users/{user.id}", json={"email": "x@example.com"}, headers=auth_headers(admin)
    )

    assert response.status_code == 422


async def test_admin_cannot_deactivate_themself(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    admin = await make_user(roles=("admin",))

    response = await client.patch(f"/admin/users/{admin.id}", json={"is_active": False}, headers=auth_headers(admin))

    assert response.status_code == 409
    assert response.json()["code"] == "cannot_deactivate_self"
    assert (await client.get("/auth/me", headers=auth_headers(admin))).json()["is_active"] is True


async def test_deactivated_users_access_token_is_401_on_the_next_request(
    client: httpx.AsyncClient, make_user, auth_headers
) -> None:
    admin, user = await make_user(roles=("admin",)), await make_user()
    headers = auth_headers(user)
    assert (await client.get("/auth/me", headers=headers)).status_code == 200

    patched = await client.patch(f"/admin/users/{user.id}", json={"is_active": False}, headers=auth_headers(admin))

    assert patched.status_code == 200
    assert patched.json()["is_active"] is False
    response = await client.get("/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_deactivated_users_refresh_cookie_no_longer_refreshes(
    client: httpx.AsyncClient, make_user, auth_headers
) -> None:
    admin, user = await make_user(roles=("admin",)), await make_user()
    token = refresh_token_of(await log_in(client, user))

    await client.patch(f"/admin/users/{user.id}", json={"is_active": False}, headers=auth_headers(admin))

    response = await refresh(client, token)
    assert response.status_code == 401
    assert response.json()["code"] == "session_revoked"


async def test_reactivated_user_can_log_in_again(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    admin, user = await make_user(roles=("admin",)), await make_user(is_active=False)

    await client.patch(f"/admin/users/{user.id}", json={"is_active": True}, headers=auth_headers(admin))

    assert (await log_in(client, user)).status_code == 200
