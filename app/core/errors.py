"""Every error becomes an RFC 9457 problem-details response, here and nowhere else.

Domain code raises :class:`DomainError` (a value with a stable ``code``); Litestar raises its HTTP exceptions;
advanced-alchemy raises repository errors; drivers raise connection errors when PostgreSQL or Redis restarts. This
module maps each to ``application/problem+json`` with ``code`` and ``request_id``. Anything unexpected is logged
with its traceback and answered with a body that reveals nothing about the internals.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
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
    HTTP_503_SERVICE_UNAVAILABLE,
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


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of the PostgreSQL error behind ``exc``, if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, asyncpg.exceptions.PostgresError):
            return str(current.sqlstate)
        current = current.__cause__ or current.__context__
    return None


def _database_refusal(request: Request[Any, Any, Any], exc: BaseException) -> Response[ProblemDetail] | None:
    """The response when PostgreSQL refused the request's data or lost a race to it; None for other failures."""
    state = _sqlstate(exc)
    if state is None:
        return None
    if state.startswith("22"):  # data exception: a NUL character, a number out of range… that validation let by
        return problem_response(
            request,
            422,
            code="validation_failed",
            detail="The request contains a value that cannot be stored or searched for (such as a NUL character)",
        )
    if state.startswith(("23", "40")):
        # Integrity violations and serialization failures: services translate the conflicts they expect (email_taken,
        # sku_taken); reaching here means a race lost against a constraint, still the client's conflict.
        return problem_response(request, 409, code="conflict", detail="The request conflicts with existing data")
    return None


def is_unique_violation(exc: BaseException, constraint: str) -> bool:
    """True when ``exc`` was caused by PostgreSQL rejecting a duplicate on the unique ``constraint``.

    Services need this to turn a lost race on a unique index into their own code (``email_taken``, ``sku_taken``).
    advanced-alchemy's ``DuplicateKeyError`` cannot be relied on: it is raised only when its message regexes match,
    and they expect a second ``DETAIL`` line that asyncpg's error message does not have. The driver's exception,
    further down the cause chain, carries the SQLSTATE class and the constraint name.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, asyncpg.exceptions.UniqueViolationError):
            return bool(current.constraint_name == constraint)
        current = current.__cause__ or current.__context__
    return False


def _is_unavailable(exc: BaseException) -> bool:
    """True when the failure is a lost or refused connection to PostgreSQL or Redis, not a bug."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(
            current,
            ConnectionError
            | TimeoutError
            | asyncpg.exceptions.PostgresConnectionError
            | asyncpg.exceptions.CannotConnectNowError
            | asyncpg.exceptions.InterfaceError
            | asyncpg.exceptions.AdminShutdownError
            | sqlalchemy.exc.TimeoutError
            | redis.exceptions.ConnectionError
            | redis.exceptions.TimeoutError,
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetail]:
    if _is_unavailable(exc):
        logger.warning(
            "dependency_unavailable",
            error=type(exc).__name__,
            path=request.scope.get("path"),
        )
        return problem_response(
            request,
            HTTP_503_SERVICE_UNAVAILABLE,
            detail="A backing service is temporarily unavailable; retry shortly",
            headers={"Retry-After": "1"},
        )
    if (refusal := _database_refusal(request, exc)) is not None:
        return refusal
    logger.exception("unhandled_exception", path=request.scope.get("path"))
    return problem_response(request, HTTP_500_INTERNAL_SERVER_ERROR)


def exception_handlers() -> ExceptionHandlersMap:
    """The app-wide exception handlers (most specific class wins in Litestar's lookup)."""
    return {
        DomainError: _handle_domain_error,
        ValidationException: _handle_validation,
        HTTPException: _handle_http,
        RepositoryError: _handle_repository,
        Exception: _handle_unexpected,
    }
