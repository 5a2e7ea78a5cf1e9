"""The exception handlers on a tiny app: unexpected errors become problem details that reveal nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import msgspec
import pytest
from advanced_alchemy.exceptions import IntegrityError as RepositoryIntegrityError
from litestar import Litestar, get
from litestar.exceptions import HTTPException
from litestar.params import FromPath

from app.core.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    exception_handlers,
    field_error_of,
    is_unique_violation,
)
from app.core.request_context import RequestContextMiddleware
from tests.support import asgi_transport

SECRET_DETAIL = "SELECT password_hash FROM users WHERE email = 'ada@example.com'"


@get("/boom")
async def boom() -> None:
    raise RuntimeError(SECRET_DETAIL)


@get("/key-error")
async def key_error() -> None:
    raise KeyError(SECRET_DETAIL)


@get("/http-500")
async def http_500() -> None:
    raise HTTPException(status_code=500, detail=SECRET_DETAIL)


@get("/connection-lost")
async def connection_lost() -> None:
    raise ConnectionRefusedError(SECRET_DETAIL)


@get("/domain")
async def domain() -> None:
    raise DomainError(
        "insufficient_stock",
        "Not enough stock",
        errors=[FieldError(field="items[0].quantity", message="requested 5, available 2")],
    )


@get("/not-found")
async def not_found() -> None:
    raise NotFound("Order")


@get("/conflict")
async def conflict() -> None:
    raise Conflict("invalid_transition", "Cannot ship a cancelled order")


DATABASE_FAILURES: dict[str, type[asyncpg.exceptions.PostgresError]] = {
    "nul-byte": asyncpg.exceptions.CharacterNotInRepertoireError,
    "unique": asyncpg.exceptions.UniqueViolationError,
    "deferred-constraint": asyncpg.exceptions.TransactionIntegrityConstraintViolationError,
    "deadlock": asyncpg.exceptions.DeadlockDetectedError,
    "serialization": asyncpg.exceptions.SerializationError,
    "statement-timeout": asyncpg.exceptions.QueryCanceledError,
    "lock-timeout": asyncpg.exceptions.LockNotAvailableError,
    "too-many-connections": asyncpg.exceptions.TooManyConnectionsError,
    "disk-full": asyncpg.exceptions.DiskFullError,
    "admin-shutdown": asyncpg.exceptions.AdminShutdownError,
    "starting-up": asyncpg.exceptions.CannotConnectNowError,
    "read-only": asyncpg.exceptions.ReadOnlySQLTransactionError,
    "connection-failure": asyncpg.exceptions.ConnectionFailureError,
    "undefined-table": asyncpg.exceptions.UndefinedTableError,
    "undefined-column": asyncpg.exceptions.UndefinedColumnError,
    "undefined-function": asyncpg.exceptions.UndefinedFunctionError,
    "no-privilege": asyncpg.exceptions.InsufficientPrivilegeError,
    "raise-exception": asyncpg.exceptions.RaiseError,
    "internal-error": asyncpg.exceptions.InternalServerError,
    "connection-lost": asyncpg.exceptions.ConnectionDoesNotExistError,
}


@get("/driver-state")
async def driver_state() -> None:
    raise asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (2) is in progress")


@get("/database/{failure:str}")
async def database_failure(failure: FromPath[str]) -> None:
    # advanced-alchemy wraps every database error, whatever its kind, in its IntegrityError.
    raise RepositoryIntegrityError(detail=SECRET_DETAIL) from _chained(DATABASE_FAILURES[failure](SECRET_DETAIL))


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Litestar(
        route_handlers=[
            boom,
            key_error,
            http_500,
            connection_lost,
            driver_state,
            domain,
            not_found,
            conflict,
            database_failure,
        ],
        exception_handlers=exception_handlers(),
        logging_config=None,
        debug=False,
    )
    app.asgi_handler = RequestContextMiddleware(app.asgi_handler)
    async with httpx.AsyncClient(transport=asgi_transport(app), base_url="http://test") as http:
        yield http


def _assert_reveals_nothing(response: httpx.Response) -> None:
    text = response.text
    for leak in (
        SECRET_DETAIL,
        "password_hash",
        "SELECT",
        "RuntimeError",
        "KeyError",
        "Traceback",
        "ConnectionRefused",
    ):
        assert leak not in text, leak


@pytest.mark.parametrize("path", ["/boom", "/key-error", "/http-500"])
async def test_unexpected_error_is_500_problem_revealing_nothing(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["status"] == 500
    assert body["request_id"] == response.headers["x-request-id"]
    _assert_reveals_nothing(response)


@pytest.mark.parametrize("path", ["/connection-lost", "/driver-state"])
async def test_lost_backing_service_is_503_with_retry_after_revealing_nothing(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "service_unavailable"
    _assert_reveals_nothing(response)


async def test_domain_error_keeps_its_code_detail_and_field_errors(client: httpx.AsyncClient) -> None:
    response = await client.get("/domain")

    assert response.status_code == 422
    assert response.json() == {
        "type": "urn:orders:problem:insufficient_stock",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": "Not enough stock",
        "code": "insufficient_stock",
        "request_id": response.headers["x-request-id"],
        "errors": [{"field": "items[0].quantity", "message": "requested 5, available 2"}],
    }


@pytest.mark.parametrize(
    ("path", "status", "code"), [("/not-found", 404, "not_found"), ("/conflict", 409, "invalid_transition")]
)
async def test_domain_error_subclasses_map_to_their_status(
    client: httpx.AsyncClient, path: str, status: int, code: str
) -> None:
    response = await client.get(path)

    assert response.status_code == status
    assert response.json()["code"] == code


async def test_concurrent_failures_each_get_their_own_request_id(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(*(client.get("/boom") for _ in range(5)))

    ids = {r.json()["request_id"] for r in responses}
    assert len(ids) == 5
    assert ids == {r.headers["x-request-id"] for r in responses}


def _chained(driver_error: BaseException) -> Exception:
    """driver error → SQLAlchemy-style wrapper → repository error, chained like the real stack does."""
    try:
        try:
            raise driver_error
        except BaseException as exc:
            raise RuntimeError("sqlalchemy.exc.IntegrityError") from exc
    except RuntimeError as exc:
        wrapped = ValueError("advanced_alchemy IntegrityError")
        wrapped.__cause__ = exc
        return wrapped


def _unique_violation(constraint: str) -> asyncpg.exceptions.UniqueViolationError:
    error = asyncpg.exceptions.UniqueViolationError("duplicate key value violates unique constraint")
    error.constraint_name = constraint
    return error


def test_unique_violation_is_recognised_through_the_cause_chain() -> None:
    assert is_unique_violation(_chained(_unique_violation("uq_users_email")), "uq_users_email")


def test_unique_violation_of_another_constraint_is_not_this_one() -> None:
    assert not is_unique_violation(_chained(_unique_violation("uq_products_sku")), "uq_users_email")


def test_other_integrity_errors_are_not_unique_violations() -> None:
    assert not is_unique_violation(_chained(asyncpg.exceptions.ForeignKeyViolationError("fk")), "uq_users_email")


class Line(msgspec.Struct, forbid_unknown_fields=True):
    quantity: int


class Body(msgspec.Struct, forbid_unknown_fields=True):
    items: list[Line] = []


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        (b'{"items": "5"}', "items", "Expected `array`, got `str`"),
        (b'{"items": [{"quantity": "5"}]}', "items[0].quantity", "Expected `int`, got `str`"),
        (b'{"items": [], "coupon": 1}', "coupon", "Object contains unknown field `coupon`"),
        (b'{"items": [{"quantity": 1, "extra": 1}]}', "items[0].extra", "Object contains unknown field `extra`"),
        (b'{"items": [{}]}', "items[0].quantity", "Object missing required field `quantity`"),
        (b"[]", "body", "Expected `object`, got `array`"),
    ],
)
def test_msgspec_error_becomes_a_field_error_naming_the_path(raw: bytes, field: str, message: str) -> None:
    with pytest.raises(msgspec.ValidationError) as raised:
        msgspec.json.decode(raw, type=Body, strict=True)

    assert field_error_of(raised.value) == FieldError(field=field, message=message)


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        ("nul-byte", 422, "validation_failed"),
        ("unique", 409, "conflict"),
        ("deferred-constraint", 409, "conflict"),
        ("deadlock", 503, "database_busy"),
        ("serialization", 503, "database_busy"),
        ("statement-timeout", 503, "database_busy"),
        ("lock-timeout", 503, "database_busy"),
        ("too-many-connections", 503, "database_busy"),
        ("disk-full", 503, "database_busy"),
        ("admin-shutdown", 503, "service_unavailable"),
        ("starting-up", 503, "service_unavailable"),
        ("read-only", 503, "service_unavailable"),
        ("connection-failure", 503, "service_unavailable"),
        ("undefined-table", 503, "database_misconfigured"),
        ("undefined-column", 503, "database_misconfigured"),
        ("undefined-function", 503, "database_misconfigured"),
        ("no-privilege", 503, "database_misconfigured"),
        ("raise-exception", 500, "internal_error"),
        ("internal-error", 500, "internal_error"),
        ("connection-lost", 503, "service_unavailable"),
    ],
)
async def test_database_error_is_classified_by_its_sqlstate_not_its_wrapper(
    client: httpx.AsyncClient, failure: str, status: int, code: str
) -> None:
    response = await client.get(f"/database/{failure}")

    assert response.status_code == status
    assert response.json()["code"] == code
    _assert_reveals_nothing(response)


@pytest.mark.parametrize(
    ("failure", "seconds"),
    [("deadlock", "1"), ("too-many-connections", "1"), ("admin-shutdown", "1"), ("undefined-table", "30")],
)
async def test_database_503_says_when_to_retry(client: httpx.AsyncClient, failure: str, seconds: str) -> None:
    response = await client.get(f"/database/{failure}")

    assert response.headers["retry-after"] == seconds
