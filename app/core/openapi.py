"""OpenAPI configuration and the documented error responses every route declares."""

from __future__ import annotations

from typing import Final

from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Server

from app.core.errors import PROBLEM_JSON, ProblemDetail

__all__ = ("openapi_config", "problems")

_DESCRIPTIONS: Final = {
    400: "Malformed JSON or wrong content type",
    401: "Missing, malformed, expired or revoked credentials",
    403: "Authenticated but lacking a permission",
    404: "Not found (or owned by someone else)",
    409: "Conflict with the current state",
    413: "Body larger than 1 MiB",
    422: "Validation or business-rule failure",
    429: "Rate limited; see Retry-After",
    503: "A backing service is unavailable",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """Problem-details responses for ``statuses`` (400 and 503 are possible on every route and always included)."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetail,
            media_type=PROBLEM_JSON,
            description=_DESCRIPTIONS[status],
            generate_examples=False,
        )
        for status in sorted({400, 503, *statuses})
    }


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Orders service",
        version=version,
        description="Catalog, orders, live order events and email notifications. Errors are RFC 9457 problem details.",
        path="/schema",
        servers=[Server(url="/")],
        render_plugins=[
            SwaggerRenderPlugin(path="/"),
            ScalarRenderPlugin(path="/scalar"),
        ],
        use_handler_docstrings=True,
    )
