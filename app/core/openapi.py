"""OpenAPI configuration, the documented error responses every route declares, and closed request schemas.

The interactive docs work offline: Swagger UI's files come from the ``swagger-ui-py`` package installed with the
project and are served by the app itself (``OfflineSwaggerUI``), never from a CDN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec
from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import OpenAPI, OpenAPIFormat, OpenAPIType, Reference, Schema, Server
from litestar.plugins import OpenAPISchemaPlugin
from litestar.static_files import create_static_files_router

from app.core.errors import PROBLEM_JSON, ProblemDetail

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

__all__ = (
    "SCHEMA_PATH",
    "ClosedStructSchemaPlugin",
    "OfflineSwaggerUI",
    "add_component_schemas",
    "openapi_config",
    "problems",
)

SCHEMA_PATH: Final = "/schema"

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


def openapi_config(version: str, *, sections: Iterable[str] = ()) -> OpenAPIConfig:
    """The document's settings; ``sections`` (Markdown) follow the summary in its description.

    One page, Swagger UI at ``/schema``, with its files from ``swagger-ui-py`` (Swagger UI 5.24.2; its own
    dependencies, Jinja2, PyYAML and packaging, are installed here anyway). A page that loads its code from a CDN is
    blank on a machine without internet access, and the other UIs have no such package: Scalar and Stoplight Elements
    exist on PyPI only inside plugins of other web frameworks (which would bring Starlette and Pydantic along), Redoc
    and RapiDoc only in a package last released in 2024.
    """
    summary = "Catalog, orders, live order events and email notifications. Errors are RFC 9457 problem details."
    return OpenAPIConfig(
        title="Orders service",
        version=version,
        description="\n\n".join([summary, *sections]),
        path=SCHEMA_PATH,
        servers=[Server(url="/")],
        render_plugins=[OfflineSwaggerUI(path="/")],
        use_handler_docstrings=True,
    )


#: Distribution that ships Swagger UI's ``dist`` files (``swagger_ui/static``), pinned in ``uv.lock``.
SWAGGER_UI_DISTRIBUTION: Final = "swagger-ui-py"
#: The asset URLs carry the package version, so a browser may keep them a year without asking again.
ASSET_MAX_AGE: Final = 365 * 24 * 3600


class OfflineSwaggerUI(SwaggerRenderPlugin):
    """Swagger UI whose JavaScript, CSS and icon this app serves itself, from the installed ``swagger-ui-py`` package.

    The files live under ``/schema/swagger-ui/<package version>/`` with ``Cache-Control: public, max-age=31536000,
    immutable``: a version bump changes every URL, so a cached copy is never stale, and the 1.5 MB bundle is fetched
    once per browser. The page itself embeds the OpenAPI document, so it needs nothing else from anywhere.
    """

    def __init__(self, *, path: str = "/") -> None:
        distribution = metadata.distribution(SWAGGER_UI_DISTRIBUTION)
        self.asset_directory = Path(str(distribution.locate_file("swagger_ui/static")))
        if not (self.asset_directory / "swagger-ui-bundle.js").is_file():
            raise RuntimeError(f"{SWAGGER_UI_DISTRIBUTION} {distribution.version} has no swagger_ui/static files")
        self.asset_path = f"/swagger-ui/{distribution.version}"
        base = f"{SCHEMA_PATH}{self.asset_path}"
        super().__init__(
            js_url=f"{base}/swagger-ui-bundle.js",
            css_url=f"{base}/swagger-ui.css",
            standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{base}/favicon-32x32.png'>",
            path=path,
        )

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)  # oauth2-redirect.html
        router.register(
            create_static_files_router(
                path=self.asset_path,
                directories=[self.asset_directory],
                name="swagger-ui-assets",
                cache_control=CacheControlHeader(max_age=ASSET_MAX_AGE, public=True, immutable=True),
            )
        )


def add_component_schemas(document: OpenAPI, schemas: Mapping[str, Mapping[str, Any]]) -> None:
    """Add JSON Schemas (as msgspec writes them) to the document's ``components/schemas``.

    For messages that no HTTP operation carries (the WebSocket feeds'): Litestar builds components only from route
    handlers, and it replaces ``OpenAPIConfig.components.schemas`` with its own when it builds the document
    (``litestar/_openapi/plugin.py:90`` in 2.25), so they are added to the built document instead.
    """
    assert document.components.schemas is not None
    for name, schema in schemas.items():
        if name in document.components.schemas:
            raise ValueError(f"component schema {name!r} is already defined")
        spec = _spec_schema(schema)
        assert isinstance(spec, Schema), name  # a component is a schema, not a bare reference
        document.components.schemas[name] = spec


#: JSON Schema keyword → ``Schema`` field (Litestar names a field after the keyword unless it says otherwise).
_SCHEMA_FIELDS: Final = {field.metadata.get("alias", field.name): field.name for field in dataclasses.fields(Schema)}
_SUBSCHEMA_MAPS: Final = frozenset({"properties", "patternProperties", "dependentSchemas"})
_SUBSCHEMA_LISTS: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SUBSCHEMAS: Final = frozenset({"items", "additionalProperties", "not", "contains", "propertyNames"})


def _spec_schema(node: Mapping[str, Any]) -> Schema | Reference:
    """A JSON Schema 2020-12 node as Litestar's spec object (an OpenAPI 3.1 schema *is* JSON Schema 2020-12).

    An unknown keyword raises ``KeyError``: the document must say what the struct says, nothing dropped silently.
    """
    if "$ref" in node:
        return Reference(ref=node["$ref"])
    return Schema(**{_SCHEMA_FIELDS[keyword]: _spec_value(keyword, value) for keyword, value in node.items()})


def _spec_value(keyword: str, value: Any) -> Any:
    if keyword in _SUBSCHEMA_MAPS:
        return {key: _spec_schema(item) for key, item in value.items()}
    if keyword in _SUBSCHEMA_LISTS:
        return [_spec_schema(item) for item in value]
    if keyword in _SUBSCHEMAS and isinstance(value, Mapping):
        return _spec_schema(value)
    if keyword == "type":
        return [OpenAPIType(item) for item in value] if isinstance(value, list) else OpenAPIType(value)
    if keyword == "format":
        return OpenAPIFormat(value)
    return value


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
