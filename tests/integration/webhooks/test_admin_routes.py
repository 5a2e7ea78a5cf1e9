"""/admin/webhooks: guarded by ``webhooks:manage``; endpoints with secrets shown once; targets checked (SSRF)."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest

from tests.support import AuthHeaders, UserMaker

PUBLIC_URL = "https://93.184.215.14/hooks/orders"  # a public address literal: no DNS needed


@pytest.fixture
async def admin_headers(make_user: UserMaker, auth_headers: AuthHeaders) -> dict[str, str]:
    return auth_headers(await make_user(roles=("admin",)))


async def _create(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> httpx.Response:
    return await client.post("/admin/webhooks", json={"url": PUBLIC_URL, **body}, headers=headers)


async def test_staff_may_not_manage_webhooks(
    client: httpx.AsyncClient, make_user: UserMaker, auth_headers: AuthHeaders
) -> None:
    staff = auth_headers(await make_user(roles=("staff",)))

    response = await _create(client, staff)

    assert response.status_code == 403
    assert response.json()["detail"] == "Permission required: webhooks:manage"


async def test_anonymous_gets_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin/webhooks")).status_code == 401


async def test_create_returns_a_standard_webhooks_secret_once(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await _create(client, admin_headers, description="ERP")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id", "url", "event_types", "description", "is_active", "disabled_reason", "created_at", "secret"
    }  # fmt: skip
    assert body["event_types"] == ["order_created", "order_status_changed"]
    assert body["is_active"] is True
    assert body["disabled_reason"] is None
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) >= 24
    listed = (await client.get("/admin/webhooks", headers=admin_headers)).json()
    one = (await client.get(f"/admin/webhooks/{body['id']}", headers=admin_headers)).json()
    assert "secret" not in listed[0]
    assert "secret" not in one
    assert one["description"] == "ERP"


async def test_secrets_differ_between_endpoints(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    first = (await _create(client, admin_headers)).json()
    second = (await _create(client, admin_headers)).json()

    assert first["secret"] != second["secret"]


async def test_event_types_subset_is_kept(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    response = await _create(client, admin_headers, event_types=["order_status_changed"])

    assert response.json()["event_types"] == ["order_status_changed"]


@pytest.mark.parametrize(
    "body",
    [
        {"event_types": ["order_deleted"]},
        {"event_types": []},
        {"colour": "red"},
        {"url": ""},
    ],
)
async def test_invalid_bodies_are_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], body: dict[str, object]
) -> None:
    response = await _create(client, admin_headers, **body)

    assert response.status_code == 422
    assert (await client.get("/admin/webhooks", headers=admin_headers)).json() == []


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fe80::1]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://100.64.0.1/hook",
        "http://93.184.215.14/hook",
        "ftp://93.184.215.14/hook",
        "https://user:pass@93.184.215.14/hook",
    ],
)
async def test_non_public_or_insecure_targets_are_forbidden(
    client: httpx.AsyncClient, admin_headers: dict[str, str], url: str
) -> None:
    response = await _create(client, admin_headers, url=url)

    assert response.status_code == 422
    assert response.json()["code"] == "webhook_target_forbidden"
    assert (await client.get("/admin/webhooks", headers=admin_headers)).json() == []


async def test_patch_checks_the_new_url_too(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    created = (await _create(client, admin_headers)).json()

    response = await client.patch(
        f"/admin/webhooks/{created['id']}", json={"url": "https://127.0.0.1/x"}, headers=admin_headers
    )

    assert response.status_code == 422
    assert response.json()["code"] == "webhook_target_forbidden"
    assert (await client.get(f"/admin/webhooks/{created['id']}", headers=admin_headers)).json()["url"] == PUBLIC_URL


async def test_patch_changes_fields_and_reactivation_clears_disabled_reason(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = (await _create(client, admin_headers)).json()
    path = f"/admin/webhooks/{created['id']}"

    off = await client.patch(path, json={"is_active": False, "description": None}, headers=admin_headers)
    on = await client.patch(path, json={"is_active": True, "event_types": ["order_created"]}, headers=admin_headers)

    assert off.status_code == 200
    assert off.json()["is_active"] is False
    assert on.json()["is_active"] is True
    assert on.json()["disabled_reason"] is None
    assert on.json()["event_types"] == ["order_created"]
    assert "secret" not in on.json()


async def test_rotate_secret_returns_a_new_secret(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    created = (await _create(client, admin_headers)).json()

    response = await client.post(f"/admin/webhooks/{created['id']}/rotate-secret", headers=admin_headers)

    assert response.status_code == 200
    assert response.json()["secret"].startswith("whsec_")
    assert response.json()["secret"] != created["secret"]


async def test_delete_removes_the_endpoint(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    created = (await _create(client, admin_headers)).json()

    response = await client.delete(f"/admin/webhooks/{created['id']}", headers=admin_headers)

    assert response.status_code == 204
    assert (await client.get(f"/admin/webhooks/{created['id']}", headers=admin_headers)).status_code == 404


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/rotate-secret"),
        ("GET", "/deliveries"),
        ("POST", f"/deliveries/{uuid.uuid4()}/redeliver"),
    ],
)
async def test_unknown_endpoint_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str], method: str, suffix: str
) -> None:
    body = {"description": "x"} if method == "PATCH" else None
    response = await client.request(method, f"/admin/webhooks/{uuid.uuid4()}{suffix}", headers=admin_headers, json=body)

    assert response.status_code == 404


async def test_redeliver_of_an_unknown_delivery_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = (await _create(client, admin_headers)).json()

    response = await client.post(
        f"/admin/webhooks/{created['id']}/deliveries/{uuid.uuid4()}/redeliver", headers=admin_headers
    )

    assert response.status_code == 404


async def test_new_endpoint_has_an_empty_delivery_page(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = (await _create(client, admin_headers)).json()

    response = await client.get(f"/admin/webhooks/{created['id']}/deliveries", headers=admin_headers)

    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 0, "page": 1, "per_page": 20, "pages": 0}
