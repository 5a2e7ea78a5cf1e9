"""X-Request-ID: generated when absent, echoed when safe, replaced when not; on every response."""

from __future__ import annotations

import re

import httpx
import pytest

SAFE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


async def test_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    first = await client.get("/health")
    second = await client.get("/health")

    assert SAFE.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("request_id", ["abc-123", "trace.1:span_2-A", "x" * 128])
async def test_safe_client_request_id_is_echoed(client: httpx.AsyncClient, request_id: str) -> None:
    response = await client.get("/health", headers={"X-Request-ID": request_id})

    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    [b"x" * 129, b"has space", b"semi;colon", b"<script>", b"back\\slash", "ünïcödé".encode()],
)
async def test_unsafe_or_too_long_client_request_id_is_replaced(client: httpx.AsyncClient, request_id: bytes) -> None:
    response = await client.get("/health", headers={b"X-Request-ID": request_id})

    assert response.headers["x-request-id"].encode() != request_id
    assert SAFE.fullmatch(response.headers["x-request-id"])


async def test_request_id_is_on_404_and_matches_the_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/missing", headers={"X-Request-ID": "req-404"})

    assert response.status_code == 404
    assert response.headers["x-request-id"] == "req-404"
    assert response.json()["request_id"] == "req-404"


async def test_request_id_is_on_401_and_matches_the_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/me", headers={"X-Request-ID": "req-401"})

    assert response.status_code == 401
    assert response.headers["x-request-id"] == "req-401"
    assert response.json()["request_id"] == "req-401"


async def test_response_carries_exactly_one_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "only-once"})

    assert response.headers.get_list("x-request-id") == ["only-once"]
