"""The OpenAPI document: an OAuth2 password flow at /auth/token, and security on exactly the protected operations."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

PUBLIC = {
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("post", "/auth/token"),
    ("post", "/auth/refresh"),
    ("post", "/auth/logout"),
    ("get", "/health"),
    ("get", "/ready"),
}
PROTECTED = {
    ("get", "/auth/me"),
    ("get", "/auth/sessions"),
    ("delete", "/auth/sessions/{session_id}"),
    ("get", "/admin/users"),
    ("patch", "/admin/users/{user_id}"),
}


@pytest.fixture
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


def _oauth2_scheme_names(spec: dict[str, Any]) -> set[str]:
    schemes = spec["components"]["securitySchemes"]
    return {name for name, scheme in schemes.items() if scheme["type"] == "oauth2"}


def _effective_security(spec: dict[str, Any], method: str, path: str) -> list[dict[str, list[str]]]:
    """The operation's own ``security``, else the document's (OpenAPI's inheritance rule)."""
    operation = spec["paths"][path][method]
    return operation.get("security", spec.get("security", []))


async def test_openapi_is_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")


async def test_oauth2_password_flow_token_url_is_auth_token(spec: dict[str, Any]) -> None:
    [name] = _oauth2_scheme_names(spec)

    assert spec["components"]["securitySchemes"][name]["flows"]["password"]["tokenUrl"] == "/auth/token"
    assert "application/x-www-form-urlencoded" in spec["paths"]["/auth/token"]["post"]["requestBody"]["content"]


@pytest.mark.parametrize(("method", "path"), sorted(PROTECTED))
async def test_protected_operation_requires_the_oauth2_scheme(spec: dict[str, Any], method: str, path: str) -> None:
    [name] = _oauth2_scheme_names(spec)
    security = _effective_security(spec, method, path)

    assert security
    assert all(name in requirement for requirement in security), security


@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
async def test_public_operation_requires_no_credentials(spec: dict[str, Any], method: str, path: str) -> None:
    security = _effective_security(spec, method, path)

    assert security == [] or {} in security, security
