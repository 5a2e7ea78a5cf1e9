"""Reject request bodies sent with the wrong ``Content-Type`` (400), before Litestar tries to parse them.

Litestar parses a JSON body whatever the declared content type; the contract wants a client that sends JSON as
``text/plain`` (or a form to a JSON route) told so, instead of having it silently accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from litestar.enums import RequestEncodingType

from app.core.errors import DomainError

if TYPE_CHECKING:
    from litestar import Request
    from litestar.handlers import HTTPRouteHandler

__all__ = ("enforce_body_content_type",)

_WITH_BODY: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_expected: dict[int, str | None] = {}


def _expected_media_type(handler: HTTPRouteHandler) -> str | None:
    key = id(handler)
    if key not in _expected:
        field = handler.parsed_fn_signature.parameters.get("data")
        kwarg = field.kwarg_definition if field is not None else None
        media_type = getattr(kwarg, "media_type", None) or (RequestEncodingType.JSON if field is not None else None)
        _expected[key] = getattr(media_type, "value", media_type)
    return _expected[key]


def _has_body(request: Request[Any, Any, Any]) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


async def enforce_body_content_type(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: the body's media type must be the one the handler declares."""
    if request.method not in _WITH_BODY or not _has_body(request):
        return
    expected = _expected_media_type(request.route_handler)
    if expected is None:
        return
    sent = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if expected == RequestEncodingType.JSON:
        ok = sent == "application/json" or (sent.startswith("application/") and sent.endswith("+json"))
    else:
        ok = sent == expected
    if not ok:
        raise DomainError(
            "unsupported_media_type",
            f"Content-Type must be {expected}, got {sent or 'none'}",
            status_code=400,
        )
