"""The OpenAPI document: valid OAS 3.1, an OAuth2 password flow at /auth/token, security on exactly the protected
operations, request schemas that document what the API enforces, the WebSocket messages; and a docs page that needs
nothing but this app (the browser proof is tests/browser)."""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

import httpx
import jsonschema_rs
import msgspec
import pytest

from app.core.openapi import SWAGGER_UI_DISTRIBUTION
from app.events.live_docs import LIVE_FEED_MESSAGES

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
    ("get", "/admin/webhooks"),
    ("post", "/admin/webhooks"),
    ("get", "/admin/webhooks/{endpoint_id}"),
    ("patch", "/admin/webhooks/{endpoint_id}"),
    ("delete", "/admin/webhooks/{endpoint_id}"),
    ("post", "/admin/webhooks/{endpoint_id}/rotate-secret"),
    ("get", "/admin/webhooks/{endpoint_id}/deliveries"),
    ("post", "/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"),
}


@pytest.fixture
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _oauth2_scheme_names(spec: dict[str, Any]) -> set[str]:
    schemes = spec["components"]["securitySchemes"]
    return {name for name, scheme in schemes.items() if scheme["type"] == "oauth2"}


def _effective_security(spec: dict[str, Any], method: str, path: str) -> list[dict[str, list[str]]]:
    """The operation's own ``security``, else the document's (OpenAPI's inheritance rule)."""
    operation = spec["paths"][path][method]
    security: list[dict[str, list[str]]] = operation.get("security", spec.get("security", []))
    return security


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


def _component(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["components"]["schemas"][ref.removeprefix("#/components/schemas/")]
    return schema


def _referenced_components(spec: dict[str, Any], node: Any, seen: set[str]) -> set[str]:
    """Every component reachable from ``node`` through ``$ref``."""
    if isinstance(node, dict):
        if (ref := node.get("$ref")) and ref not in seen:
            seen.add(ref)
            _referenced_components(spec, _component(spec, ref), seen)
        for value in node.values():
            _referenced_components(spec, value, seen)
    elif isinstance(node, list):
        for value in node:
            _referenced_components(spec, value, seen)
    return seen


@pytest.mark.parametrize("name", ["OrderCreate", "OrderLine", "ProductCreate", "ProductUpdate", "UserUpdate"])
async def test_request_schemas_forbid_additional_properties(spec: dict[str, Any], name: str) -> None:
    assert spec["components"]["schemas"][name]["additionalProperties"] is False


async def test_every_json_request_body_and_its_parts_are_closed(spec: dict[str, Any]) -> None:
    bodies = [
        operation["requestBody"]["content"]["application/json"]["schema"]
        for item in spec["paths"].values()
        for operation in item.values()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    objects = {ref for ref in _referenced_components(spec, bodies, set()) if _component(spec, ref).get("properties")}

    assert len(bodies) >= 9
    assert {ref for ref in objects if _component(spec, ref).get("additionalProperties") is not False} == set()


async def test_structs_that_tolerate_extra_keys_stay_open(spec: dict[str, Any]) -> None:
    # The OAuth2 form ignores unknown fields (RFC 6749 §3.2); responses may grow fields.
    for name in ("LoginForm", "OrderRead", "ProblemDetail"):
        assert "additionalProperties" not in spec["components"]["schemas"][name], name


async def test_document_validates_against_the_openapi_3_1_schema(spec: dict[str, Any]) -> None:
    # The official OAS 3.1 schema (2022-10-07), as bundled with schemathesis. Formats are annotations, as JSON
    # Schema 2020-12 says: OAS allows relative URLs such as the tokenUrl "/auth/token" where it writes "uri".
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    validator = jsonschema_rs.Draft202012Validator(OPENAPI_31, validate_formats=False, offline=True)

    assert [error.message for error in validator.iter_errors(spec)] == []
    for name, schema in spec["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


@pytest.mark.parametrize(("name", "field"), [("ProductUpdate", "stock"), ("ProductUpdate", "price_cents")])
async def test_zero_lower_bounds_are_documented_on_patch_fields(spec: dict[str, Any], name: str, field: str) -> None:
    assert spec["components"]["schemas"][name]["properties"][field]["minimum"] == 0


async def test_logout_documents_an_empty_204(spec: dict[str, Any]) -> None:
    assert "content" not in spec["paths"]["/auth/logout"]["post"]["responses"]["204"]


async def test_the_refresh_cookie_is_an_optional_parameter(spec: dict[str, Any]) -> None:
    [cookie] = [p for p in spec["paths"]["/auth/sessions"]["get"]["parameters"] if p["in"] == "cookie"]

    assert cookie["required"] is False


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items() if m in methods]


async def test_every_operation_with_a_body_documents_its_body_errors(spec: dict[str, Any]) -> None:
    undocumented = {
        (method, path): sorted({"400", "413", "422"} - set(operation["responses"]))
        for method, path, operation in _operations(spec)
        if "requestBody" in operation
    }

    assert {key: missing for key, missing in undocumented.items() if missing} == {}


async def test_every_operation_that_needs_credentials_documents_401(spec: dict[str, Any]) -> None:
    [name] = _oauth2_scheme_names(spec)
    undocumented = [
        (method, path)
        for method, path, operation in _operations(spec)
        if any(name in requirement for requirement in _effective_security(spec, method, path))
        and "401" not in operation["responses"]
    ]

    assert undocumented == []


def _page_assets(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)


async def test_the_docs_page_loads_only_files_the_app_serves(client: httpx.AsyncClient) -> None:
    page = await client.get("/schema")
    assets = _page_assets(page.text)

    assert page.status_code == 200
    assert len(assets) == 4  # stylesheet, two scripts, icon
    assert [url for url in assets if not url.startswith("/schema/swagger-ui/")] == []
    for url in assets:
        assert (await client.get(url)).status_code == 200, url


async def test_swagger_ui_files_are_cached_for_a_year_as_immutable(client: httpx.AsyncClient) -> None:
    [script] = [url for url in _page_assets((await client.get("/schema")).text) if url.endswith("-bundle.js")]
    response = await client.get(script)

    assert response.headers["content-type"].startswith("text/javascript")
    assert set(response.headers["cache-control"].split(", ")) == {"public", "max-age=31536000", "immutable"}


async def test_the_swagger_ui_file_urls_carry_the_package_version(client: httpx.AsyncClient) -> None:
    version = metadata.version(SWAGGER_UI_DISTRIBUTION)

    assert {url.split("/")[3] for url in _page_assets((await client.get("/schema")).text)} == {version}


async def test_the_scalar_page_that_needed_a_cdn_is_gone(client: httpx.AsyncClient) -> None:
    # Scalar's page loaded its script from a CDN; no well-kept Python package ships it on its own, so it is gone.
    assert (await client.get("/schema/scalar")).status_code == 404


@pytest.mark.parametrize(
    "words",
    ["/ws/orders?token=", "/ws/admin/orders?token=", "?since=<event_id>", "`ping`", '{"type":"pong"}', "1008", "1012"],
)
async def test_the_description_explains_the_websocket_feeds(spec: dict[str, Any], words: str) -> None:
    assert words in spec["info"]["description"]


@pytest.mark.parametrize("message", LIVE_FEED_MESSAGES, ids=lambda struct: struct.__name__)
async def test_websocket_messages_are_component_schemas_of_their_structs(
    spec: dict[str, Any], message: type[msgspec.Struct]
) -> None:
    documented = spec["components"]["schemas"][message.__name__]
    fields = {field.encode_name for field in msgspec.structs.fields(message)}
    tag = {message.__struct_config__.tag_field} - {None}

    assert set(documented["properties"]) == fields | tag
