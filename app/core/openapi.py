"""OpenAPI configuration, the documented error responses every route declares, and closed request schemas."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final

import msgspec
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Schema, Server
from litestar.plugins import OpenAPISchemaPlugin

from app.core.errors import PROBLEM_JSON, ProblemDetail

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

__all__ = ("ClosedStructSchemaPlugin", "openapi_config", "problems")

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


def problems(*statuses: int, described: Mapping[int, str] | None = None) -> dict[int, ResponseSpec]:
    """Problem-details responses for ``statuses`` (400 and 503 are possible on every route and always included).

    ``described`` replaces the generic description of a status where a route gives it a meaning of its own.
    """
    return {
        status: ResponseSpec(
            data_container=ProblemDetail,
            media_type=PROBLEM_JSON,
            description=(described or {}).get(status, _DESCRIPTIONS[status]),
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


class ClosedStructSchemaPlugin(OpenAPISchemaPlugin):
    """Request-body schemas that say what the API enforces: ``additionalProperties: false`` and zero bounds.

    It claims the structs with ``forbid_unknown_fields`` (every request body) ahead of Litestar's own struct plugin
    (app plugins come first in the chain), lets the next plugin that handles the struct build its component schema,
    and corrects two things Litestar gets wrong there:

    - Litestar ignores ``forbid_unknown_fields``, so the document would invite extra keys the API answers with 422.
      The schema follows the struct's own declaration, so a struct that tolerates extra keys (the OAuth2 form)
      stays open.
    - For a field whose type is a union (a PATCH field, ``int | UnsetType``), Litestar copies the constraints only
      when they are truthy, so ``ge=0`` vanishes and the document allows the negative stock the API refuses.
    """

    __slots__ = ()

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return (
            not field_definition.is_union
            and field_definition.is_subclass_of(msgspec.Struct)
            and field_definition.type_.__struct_config__.forbid_unknown_fields
        )

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        builder = next(
            plugin
            for plugin in schema_creator.plugins
            if plugin is not self and schema_creator.plugin_supports_field(plugin, field_definition)
        )
        schema = builder.to_openapi_schema(field_definition=field_definition, schema_creator=schema_creator)
        schema.additional_properties = False
        _restore_zero_bounds(field_definition.type_, schema)
        return schema


_BOUNDS: Final = (("ge", "minimum"), ("gt", "exclusive_minimum"), ("le", "maximum"), ("lt", "exclusive_maximum"))


def _numeric_types(info: msgspec.inspect.Type) -> Iterator[msgspec.inspect.IntType | msgspec.inspect.FloatType]:
    if isinstance(info, msgspec.inspect.Metadata):
        yield from _numeric_types(info.type)
    elif isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            yield from _numeric_types(member)
    elif isinstance(info, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        yield info


def _restore_zero_bounds(struct: type[msgspec.Struct], schema: Schema) -> None:
    """Put back the numeric bounds equal to zero that Litestar dropped from ``struct``'s property schemas."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    properties = schema.properties or {}
    for field in info.fields:
        prop = properties.get(field.encode_name)
        if not isinstance(prop, Schema):
            continue
        for numeric in _numeric_types(field.type):
            for bound, keyword in _BOUNDS:
                if getattr(numeric, bound) == 0 and getattr(prop, keyword) is None:
                    setattr(prop, keyword, 0.0)
