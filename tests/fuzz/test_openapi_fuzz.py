"""Every operation of the OpenAPI document, fuzzed by schemathesis against a real server process.

Schemathesis generates requests from the document, valid ones and deliberately invalid ones (a string where an
integer belongs, an unknown field, a missing one), sends them with an admin's token and checks each response: never
a 5xx, a documented status code, content type and body, and invalid input refused. This is the CI-sized version of
the CLI run (``schemathesis run …/schema/openapi.json --checks all``); the server gets its own throwaway database.

Not checked here:

- ``positive_data_acceptance``: a request can fit the schema and still break a business rule (an order for an address
  that does not exist is 422 ``address_not_found``, by contract).
- ``allow_header_conformance``: Litestar 2's automatic OPTIONS handler lists only the methods of the first handler
  registered on a path (litestar-org/litestar#4169, fixed in Litestar 3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance

from app.config import Settings
from app.main import create_app
from tests.conftest import Servers, _admin_execute
from tests.live_server import live_server

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "fuzz-admin@example.com"
ADMIN_PASSWORD = "fuzz-admin-password-1"


@dataclass(frozen=True)
class FuzzServer:
    url: str
    admin_headers: dict[str, str]


def _admin_headers(url: str, database_url: str) -> dict[str, str]:
    """Register a user, grant it the admin role in the database, and log it in."""
    registered = httpx.post(f"{url}/auth/register", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert registered.status_code == 201, registered.text
    grant = f"INSERT INTO user_roles (user_id, role_name) VALUES ('{registered.json()['id']}', 'admin')"
    asyncio.run(_admin_execute(database_url, grant))
    login = httpx.post(f"{url}/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


@pytest.fixture(scope="session")
def fuzz_server(servers: Servers, settings: Settings) -> Iterator[FuzzServer]:
    with live_server(servers, settings, name="orders_fuzz") as server:
        yield FuzzServer(server.url, _admin_headers(server.url, server.database_url))


def _openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document, built without serving it: nothing connects until an app starts.

    Loaded at import because schemathesis generates one test per operation at collection time (its fixture-based
    loader reads a pytest attribute that pytest 9 no longer has).
    """
    unused = {"DATABASE_URL": "postgresql+asyncpg://127.0.0.1/unused", "REDIS_URL": "redis://127.0.0.1/0"}
    document: dict[str, Any] = create_app(
        Settings.from_env({**unused, "JWT_SECRET": "unused-" + "x" * 32, "LOG_LEVEL": "WARNING"})
    ).openapi_schema.to_schema()
    return document


schema = schemathesis.openapi.from_dict(_openapi_document())


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_every_operation_answers_generated_requests_as_documented(case: Case[Any], fuzz_server: FuzzServer) -> None:
    case.call_and_validate(
        base_url=fuzz_server.url,
        headers=fuzz_server.admin_headers,
        excluded_checks=[positive_data_acceptance, allow_header_conformance],
    )
