"""The OpenLineage specification's JSON Schemas, rebuilt from the client that implements it.

No package on PyPI ships the specification's schema files (``OpenLineage.json`` and the facet
schemas), and tests may not download them. The OpenLineage Python client's classes in
``openlineage.client.generated`` are generated from those very files, one class per ``$defs``
entry, each naming its schema's URL (``_get_schema``). This module turns each class back into
a JSON Schema under that URL: every field with its type (strings, numbers, enums, lists, maps,
nested objects), the fields without a default required. Extra properties stay allowed, as the
specification allows them on events and facets. So an event that lacks a required field, or
holds a value of the wrong type anywhere the specification types it, fails; the schemas follow
whatever version of the client is installed, the same that Airflow's provider builds events
with.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
import types
import typing
from typing import Any

import attr

__all__ = ["client_schemas"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The dialect the specification's schemas are written in."""
_FORMATS = {"eventTime": "date-time", "runId": "uuid"}
"""Fields whose string format the specification fixes (the client checks them as it builds)."""
_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    Any: {},
}


def client_schemas() -> list[dict[str, Any]]:
    """One schema document per specification file the client's classes come from, by ``$id``."""
    import openlineage.client.generated as generated

    documents: dict[str, dict[str, Any]] = {}
    for module_info in pkgutil.iter_modules(generated.__path__):
        module = importlib.import_module(f"{generated.__name__}.{module_info.name}")
        for cls in vars(module).values():
            url = _schema_url(cls, module)
            if url is None:
                continue
            document, _, pointer = url.partition("#/$defs/")
            definitions = documents.setdefault(
                document, {"$schema": DIALECT, "$id": document, "$defs": {}}
            )
            definitions["$defs"][pointer] = _object(cls)
    return list(documents.values())


def _schema_url(cls: Any, module: types.ModuleType) -> str | None:
    """The URL a class of ``module`` stands for, or None for anything else."""
    if not (isinstance(cls, type) and attr.has(cls) and cls.__module__ == module.__name__):
        return None
    getter = vars(cls).get("_get_schema")
    if getter is None:
        return None
    url = getter.__func__()
    return url if isinstance(url, str) and "#/$defs/" in url else None


def _object(cls: type, within: frozenset[type] = frozenset()) -> dict[str, Any]:
    """An attrs class as a JSON object schema: its fields, the ones without default required.

    ``within`` are the classes being described around this one: a class inside itself (a schema
    field's nested ``fields``) is any object there.
    """
    if cls in within:
        return {"type": "object"}
    attr.resolve_types(cls)
    fields = attr.fields(cls)
    inner = within | {cls}
    return {
        "type": "object",
        "properties": {field.name: _field(field.name, field.type, inner) for field in fields},
        "required": [field.name for field in fields if field.default is attr.NOTHING],
    }


def _field(name: str, annotation: Any, within: frozenset[type]) -> dict[str, Any]:
    schema = _schema(annotation, within)
    return {**schema, "format": _FORMATS[name]} if name in _FORMATS else schema


def _schema(annotation: Any, within: frozenset[type]) -> dict[str, Any]:
    """The JSON Schema of one field's type."""
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema(argument, within) for argument in arguments]}
    if annotation is type(None):
        return {"type": "null"}
    if origin is list:
        return {"type": "array", "items": _schema(arguments[0], within) if arguments else {}}
    if origin is dict:
        # A map of facets: each facet is checked against the schema its own _schemaURL names.
        return {"type": "object"}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"enum": [member.value for member in annotation]}
    if isinstance(annotation, type) and attr.has(annotation):
        return _object(annotation, within)
    return {}
