"""Every error becomes an RFC 9457 problem-details response, here and nowhere else.

Domain code raises :class:`DomainError` (a value with a stable ``code``); Litestar raises its HTTP exceptions;
advanced-alchemy raises repository errors; drivers raise connection errors when PostgreSQL or Redis restarts. This
module maps each to ``application/problem+json`` with ``code`` and ``request_id``. Anything unexpected is logged
with its traceback and answered with a body that reveals nothing about the internals.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

import asyncpg
import msgspec
import redis.exceptions
import sqlalchemy.exc
from advanced_alchemy.exceptions import (
    NotFoundError,
    RepositoryError,
)
from litestar import Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    SerializationException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.status_codes import (
    HTTP_500_INTERNAL_SERVER_ERROR,
)

from app.core.logging import get_logger
from app.core.request_context import request_id_of

if TYPE_CHECKING:
    from litestar.connection import Request
    from litestar.types import ExceptionHandlersMap

__all__ = (
    "DomainError",
    "FieldError",
    "InvalidRequest",
    "MalformedJSON",
    "NotFound",
    "ProblemDetail",
    "exception_handlers",
    "field_error_of",
    "is_unique_violation",
    "problem_response",
)

logger = get_logger("app.errors")

PROBLEM_JSON: Final = "application/problem+json"

_STATUS_CODES: Final[Mapping[int, tuple[str, str]]] = {
    400: ("bad_request", "Bad Request"),
    401: ("not_authenticated", "Unauthorized"),
    403: ("permission_denied", "Forbidden"),
    404: ("not_found", "Not Found"),
    405: ("method_not_allowed", "Method Not Allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Content Too Large"),
    415: ("unsupported_media_type", "Unsupported Media Type"),
    422: ("validation_failed", "Unprocessable Content"),
    429: ("rate_limited", "Too Many Requests"),
    500: ("internal_error", "Internal Server Error"),
    503: ("service_unavailable", "Service Unavailable"),
}


class FieldError(msgspec.Struct, frozen=True, omit_defaults=True):
    """One invalid input: ``field`` is a path such as ``items[0].quantity``.

    Stock errors add the line's ``product_id`` and the ``requested`` and ``available`` quantities.
    """

    field: str
    message: str
    product_id: uuid.UUID | None = None
    requested: int | None = None
    available: int | None = None


class ProblemDetail(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details, with the contract's ``code``, ``request_id`` and field ``errors``."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[FieldError] | None = None


class DomainError(Exception):
    """A business-rule failure with a stable machine-readable code. Raised by services, mapped here."""

    default_status: ClassVar[int] = 422
    status_code: int
    code: str
    detail: str

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status_code: int | None = None,
        errors: list[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status_code = status_code if status_code is not None else self.default_status
        self.errors = errors
        self.headers = dict(headers or {})


class NotFound(DomainError):
    """The resource does not exist *or belongs to someone else*; the two are deliberately indistinguishable."""

    default_status = 404

    def __init__(self, what: str) -> None:
        super().__init__("not_found", f"{what} not found")


class Conflict(DomainError):
    default_status = 409


class AuthenticationFailed(DomainError):
    """Credentials missing, malformed, expired or revoked: 401 with ``WWW-Authenticate: Bearer``."""

    default_status = 401

    def __init__(self, code: str = "not_authenticated", detail: str = "Authentication required") -> None:
        error = "invalid_token" if code not in {"not_authenticated", "invalid_credentials"} else None
        challenge = f'Bearer error="{error}"' if error else "Bearer"
        super().__init__(code, detail, headers={"WWW-Authenticate": challenge})


class InvalidRequest(DomainError):
    """The request does not fit the operation's declared types and constraints: 422 ``validation_failed``."""

    def __init__(self, errors: list[FieldError]) -> None:
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or "Request validation failed"
        super().__init__("validation_failed", detail, errors=errors)


class MalformedJSON(DomainError):
    """The body is not JSON at all (as opposed to JSON of the wrong shape, which is :class:`InvalidRequest`)."""

    default_status = 400

    def __init__(self, reason: str) -> None:
        super().__init__("malformed_json", f"Request body is not valid JSON: {reason}")


def problem_response(
    request: Request[Any, Any, Any],
    status_code: int,
    *,
    code: str | None = None,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[ProblemDetail]:
    default_code, title = _STATUS_CODES.get(status_code, ("error", "Error"))
    code = code or default_code
    body = ProblemDetail(
        type=f"urn:orders:problem:{code}",
        title=title,
        status=status_code,
        detail=detail or title,
        code=code,
        request_id=request_id_of(request.scope),
        errors=errors,
    )
    return Response(
        body,
        status_code=status_code,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


# msgspec appends where the error is: "Expected `int`, got `str` - at `$.items[0].quantity`" (nothing at the top).
_MSGSPEC_LOCATION: Final = re.compile(r" - at `\$(?P<path>[^`]*)`$")
# When the problem is a key's presence, the location is the enclosing object and the key is named in the message.
_NAMED_KEY: Final = re.compile(r"^Object (?:contains unknown|missing required) field `(?P<name>.+)`$", re.DOTALL)


def _field_path(location: str, message: str) -> str:
    """The contract's field path (``items[0].quantity``) for an error at ``location`` described by ``message``.

    An unknown or missing key is reported at the object that holds it; the client needs the key itself
    (``coupon``, ``items[0].extra``), not the object, to see what to fix.
    """
    location = location.lstrip(".")
    if named := _NAMED_KEY.match(message):
        return f"{location}.{named['name']}" if location else named["name"]
    return location


def field_error_of(exc: msgspec.ValidationError) -> FieldError:
    """The field error for one of msgspec's validation errors (it reports the first problem it meets)."""
    text = str(exc)
    located = _MSGSPEC_LOCATION.search(text)
    message = text[: located.start()] if located else text
    path = _field_path(located["path"] if located else "", message)
    return FieldError(field=path or "body", message=message)


def _field_errors(extra: Any) -> list[FieldError]:
    """Turn Litestar's validation ``extra`` (``[{message, key, source}]``) into ``[{field, message}]``.

    Litestar has already cut msgspec's location suffix off the message and put the location (prefixed with
    ``data`` for the body) in ``key``.
    """
    errors: list[FieldError] = []
    for item in extra if isinstance(extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "Invalid value"))
        location = str(item.get("key") or "")
        if not location and (located := _MSGSPEC_LOCATION.search(message)):
            message, location = message[: located.start()], located["path"]
        if location == "data":
            location = ""
            if message.strip("'") == "data":  # Litestar's message for an absent body is the KeyError's text
                message = "A request body is required"
        elif location.startswith("data."):
            location = location[5:]
        errors.append(FieldError(field=_field_path(location, message) or "body", message=message))
    return errors


def _handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[ProblemDetail]:
    return problem_response(
        request,
        exc.status_code,
        code=exc.code,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers,
    )


def _handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[ProblemDetail]:
    return _handle_domain_error(request, InvalidRequest(_field_errors(exc.extra)))


#: What Litestar raises (as a plain 500) when the client hangs up while its request body is being read.
_CLIENT_GONE: Final = "client disconnected prematurely"
#: nginx's "client closed request": nobody reads the response; the logs and metrics must not count it as a 5xx.
CLIENT_CLOSED_REQUEST: Final = 499


def _handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ProblemDetail]:
    status = exc.status_code
    if status == 500 and exc.detail == _CLIENT_GONE:
        logger.info("client_disconnected")
        return problem_response(request, CLIENT_CLOSED_REQUEST, code="client_closed_request", detail=exc.detail)
    headers: dict[str, str] = dict(exc.headers or {})
    detail = exc.detail
    code: str | None = None
    if isinstance(exc, NotAuthorizedException):
        headers.setdefault("WWW-Authenticate", "Bearer")
    elif isinstance(exc, PermissionDeniedException):
        code = "permission_denied"
    elif isinstance(exc, TooManyRequestsException):
        # Litestar's limiter sends RateLimit-* headers but no Retry-After; derive it from the reset time.
        reset = next((v for k, v in headers.items() if k.lower() == "ratelimit-reset"), "1")
        headers["Retry-After"] = str(max(1, int(reset))) if reset.isdigit() else "1"
        detail = "Too many requests; retry later"
    elif status == 400 and isinstance(exc.__cause__, SerializationException):
        return _handle_domain_error(request, MalformedJSON(str(exc.__cause__)))
    if status >= 500:
        logger.error("http_exception", status=status, detail=exc.detail)
        detail = _STATUS_CODES.get(status, ("error", "Error"))[1]
    return problem_response(request, status, code=code, detail=detail, headers=headers)


def _handle_repository(request: Request[Any, Any, Any], exc: RepositoryError) -> Response[ProblemDetail]:
    if isinstance(exc, NotFoundError):
        return problem_response(request, 404, detail="Resource not found")
    # advanced-alchemy wraps *every* database error in IntegrityError (a lost connection and a NUL byte included),
    # so its class says little: PostgreSQL's SQLSTATE, further down the cause chain, decides.
    return _handle_unexpected(request, exc)


def _cause_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it (``raise … from``) or was being handled when it was raised, and so on; each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _postgres_error(exc: BaseException) -> asyncpg.exceptions.PostgresError | None:
    """The PostgreSQL error behind ``exc``, if there is one."""
    return next((c for c in _cause_chain(exc) if isinstance(c, asyncpg.exceptions.PostgresError)), None)


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of the PostgreSQL error behind ``exc``, if there is one."""
    postgres = _postgres_error(exc)
    return str(postgres.sqlstate) if postgres is not None else None


class _DatabaseFailure(msgspec.Struct, frozen=True):
    """How a class of PostgreSQL errors is answered: status, code, what the client reads, when to retry."""

    status: int
    code: str
    detail: str
    retry_after: int | None = None
    log_event: str | None = None  # operators need to hear about it (the client's answer says little)


_REFUSED_VALUE: Final = _DatabaseFailure(
    422,
    "validation_failed",
    "The request contains a value that cannot be stored or searched for (such as a NUL character)",
)
_CONFLICT: Final = _DatabaseFailure(409, "conflict", "The request conflicts with existing data")
_UNAVAILABLE: Final = _DatabaseFailure(
    503,
    "service_unavailable",
    "A backing service is temporarily unavailable; retry shortly",
    1,
    "dependency_unavailable",
)
_BUSY: Final = _DatabaseFailure(
    503, "database_busy", "The database is too busy to answer now; retry shortly", 1, "database_busy"
)
#: The schema is not what this version of the code expects: a deploy error that no retry by the client fixes soon.
_MISCONFIGURED: Final = _DatabaseFailure(
    503,
    "database_misconfigured",
    "The service is not fully deployed; retry later",
    30,
    "database_misconfigured",
)

#: SQLSTATE (or its class, the first two characters) → answer. The most specific entry wins.
#: https://www.postgresql.org/docs/current/errcodes-appendix.html
_BY_SQLSTATE: Final[Mapping[str, _DatabaseFailure]] = {
    "22": _REFUSED_VALUE,  # data exception: a NUL character, a number out of range… that validation let by
    # Integrity violations: services translate the conflicts they expect (email_taken, sku_taken); reaching here
    # means a race lost against a constraint, still the client's conflict.
    "23": _CONFLICT,
    "40002": _CONFLICT,  # transaction_integrity_constraint_violation (a deferred constraint at commit)
    # Transaction rollback: serialization_failure 40001, deadlock_detected 40P01, statement_completion_unknown
    # 40003. Nothing of the request was kept; the same request is expected to succeed when retried.
    "40": _BUSY,
    "08": _UNAVAILABLE,  # connection exception
    "53": _BUSY,  # insufficient resources: too_many_connections 53300, disk_full, out_of_memory
    "54": _BUSY,  # program limit exceeded (e.g. statement too complex at this moment)
    "55P03": _BUSY,  # lock_not_available: lock_timeout expired
    "55006": _BUSY,  # object_in_use
    "57014": _BUSY,  # query_canceled: statement_timeout expired, or an operator cancelled the query
    "57P01": _UNAVAILABLE,  # admin_shutdown: the server is restarting
    "57P02": _UNAVAILABLE,  # crash_shutdown
    "57P03": _UNAVAILABLE,  # cannot_connect_now: the server is starting up
    "57P05": _UNAVAILABLE,  # idle_session_timeout
    "58": _UNAVAILABLE,  # system error: I/O error on the server
    "25006": _UNAVAILABLE,  # read_only_sql_transaction: writes reached a standby (a failover in progress)
    "42P01": _MISCONFIGURED,  # undefined_table
    "42703": _MISCONFIGURED,  # undefined_column
    "42883": _MISCONFIGURED,  # undefined_function
    "42704": _MISCONFIGURED,  # undefined_object (a type, say)
    "3F000": _MISCONFIGURED,  # invalid_schema_name
    "42501": _MISCONFIGURED,  # insufficient_privilege: the role lacks a grant on a new table
}


def _classify_sqlstate(state: str) -> _DatabaseFailure | None:
    return _BY_SQLSTATE.get(state) or _BY_SQLSTATE.get(state[:2])


def _database_failure(exc: BaseException) -> _DatabaseFailure | None:
    """The answer for a failure caused by PostgreSQL (by its SQLSTATE) or a lost connection; None for a bug."""
    state = _sqlstate(exc)
    if state is not None and (failure := _classify_sqlstate(state)) is not None:
        return failure
    return _UNAVAILABLE if _is_unavailable(exc) else None


def is_unique_violation(exc: BaseException, constraint: str) -> bool:
    """True when ``exc`` was caused by PostgreSQL rejecting a duplicate on the unique ``constraint``.

    Services need this to turn a lost race on a unique index into their own code (``email_taken``, ``sku_taken``).
    advanced-alchemy's ``DuplicateKeyError`` cannot be relied on: it is raised only when its message regexes match,
    and they expect a second ``DETAIL`` line that asyncpg's error message does not have. The driver's exception,
    further down the cause chain, carries the SQLSTATE class and the constraint name.
    """
    return any(
        isinstance(cause, asyncpg.exceptions.UniqueViolationError) and cause.constraint_name == constraint
        for cause in _cause_chain(exc)
    )


def _is_unavailable(exc: BaseException) -> bool:
    """True when the failure is a lost or refused connection to PostgreSQL or Redis, not a bug."""
    for current in _cause_chain(exc):
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(
            current,
            ConnectionError
            | TimeoutError
            | asyncpg.exceptions.PostgresConnectionError
            | asyncpg.exceptions.CannotConnectNowError
            | asyncpg.exceptions.InterfaceError
            # A pooled connection whose server process was terminated (admin_shutdown, a failover) while it sat idle:
            # the next statement can meet the protocol half-way through failing ("cannot switch to state 12").
            | asyncpg.exceptions.InternalClientError
            | asyncpg.exceptions.AdminShutdownError
            | sqlalchemy.exc.TimeoutError
            | redis.exceptions.ConnectionError
            | redis.exceptions.TimeoutError,
        ):
            return True
    return False


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetail]:
    failure = _database_failure(exc)
    if failure is None:
        logger.exception("unhandled_exception", path=request.scope.get("path"))
        return problem_response(request, HTTP_500_INTERNAL_SERVER_ERROR)
    if failure.log_event is not None:
        # The error's class and SQLSTATE (and PostgreSQL's message, which names a missing table but holds no values)
        # say what an operator needs; the response says none of it.
        # A deploy error needs someone to act; the transient kinds need someone to look only if they persist.
        log = logger.error if failure is _MISCONFIGURED else logger.warning
        log(
            failure.log_event,
            error=type(exc).__name__,
            sqlstate=_sqlstate(exc),
            reason=_postgres_message(exc) if failure is _MISCONFIGURED else None,
            path=request.scope.get("path"),
        )
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else None
    return problem_response(request, failure.status, code=failure.code, detail=failure.detail, headers=headers)


def _postgres_message(exc: BaseException) -> str | None:
    """PostgreSQL's own message for the error behind ``exc`` (``relation "products" does not exist``)."""
    postgres = _postgres_error(exc)
    return str(postgres.args[0]) if postgres is not None and postgres.args else None


def exception_handlers() -> ExceptionHandlersMap:
    """The app-wide exception handlers (most specific class wins in Litestar's lookup)."""
    return {
        DomainError: _handle_domain_error,
        ValidationException: _handle_validation,
        HTTPException: _handle_http,
        RepositoryError: _handle_repository,
        Exception: _handle_unexpected,
    }
