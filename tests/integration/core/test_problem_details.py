"""Every error the app answers is RFC 9457 problem details with ``code`` and ``request_id``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.types import Message

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "request_id"}


def _assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"]
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_404_problem_with_request_id(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.get("/no/such/route"), 404, "not_found")


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")

    _assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


async def test_missing_credentials_is_401_problem(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.get("/auth/me"), 401, "not_authenticated")


async def test_missing_permission_is_403_problem(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    customer = await make_user()

    _assert_problem(await client.get("/admin/users", headers=auth_headers(customer)), 403, "permission_denied")


async def test_validation_failure_is_422_problem_with_field_errors(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/register", json={"email": "not-an-email", "password": "password-1"})

    body = _assert_problem(response, 422, "validation_failed")
    assert body["errors"] == [{"field": "email", "message": body["errors"][0]["message"]}]


async def test_missing_body_is_422_naming_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/register", headers={"Content-Type": "application/json"})

    body = _assert_problem(response, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["body"]


async def test_json_sent_to_the_form_route_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/token", json={"username": "a@example.com", "password": "password-1"})

    _assert_problem(response, 400, "unsupported_media_type")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/auth/sessions/not-a-uuid"), ("DELETE", "/auth/sessions/not-a-uuid"), ("PATCH", "/admin/users/123")],
)
async def test_malformed_path_id_is_problem_not_500(
    client: httpx.AsyncClient, make_user, auth_headers, method, path
) -> None:
    admin = await make_user(roles=("admin",))

    response = await client.request(method, path, headers=auth_headers(admin), json={})

    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth/login", {"email": "a\x00b@example.com", "password": "password-1"}),
        ("/auth/register", {"email": "a\x00b@example.com", "password": "password-1"}),
        ("/auth/register", {"email": "nul@example.com", "password": "password-1", "full_name": "A\x00"}),
    ],
)
async def test_nul_character_is_422_not_a_database_error(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    # PostgreSQL text cannot hold NUL; it must be refused as input, not surface as a 409 or a 500.
    _assert_problem(await client.post(path, json=body), 422, "validation_failed")


async def test_nul_in_a_search_is_422(client: httpx.AsyncClient, make_user, auth_headers) -> None:
    admin = await make_user(roles=("admin",))

    response = await client.get("/admin/users", params={"q": "a\x00b"}, headers=auth_headers(admin))

    _assert_problem(response, 422, "validation_failed")


async def test_a_client_that_hangs_up_mid_body_is_recorded_as_499_not_as_a_server_error(app: Litestar) -> None:
    """Litestar reports a client gone while its body is read as a 500; nobody gets the answer, and it is no bug."""
    events: Iterator[dict[str, Any]] = iter(
        [{"type": "http.request", "body": b'{"email": "a', "more_body": True}, {"type": "http.disconnect"}]
    )
    sent: list[Message] = []

    async def receive() -> dict[str, Any]:
        return next(events)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/auth/login",
        "raw_path": b"/auth/login",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), (b"content-length", b"64")],
        "client": ("203.0.113.9", 5555),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)  # type: ignore[arg-type]

    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [499]
