"""The checks a ``json_schema`` passes before a generation starts.

A schema is used twice: backends receive it and the JSON stage validates the
output against it at the end of the generation. Both must be safe, so a schema
is refused up front when it is too large, nests too deeply, names a dialect
with something other than a string, or holds a ``$ref`` that does not resolve
inside the schema (references are never fetched) or loops without stepping
into the value.
"""

from __future__ import annotations

import json
from typing import Any

import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator

from llmrouter_server.errors import InvalidArgument
from llmrouter_server.shaping.json_stage import schema_validator

MAX_SCHEMA_DEPTH = 64
"""The deepest nesting of objects and arrays a ``json_schema`` may have."""

_REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")
"""Keywords that apply another schema, named by URI, to the same value."""

_IN_PLACE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else")
"""Keywords whose subschemas apply to the same value (no step into it)."""


def check_schema(schema: str, limit: int) -> None:
    """A JSON Schema the JSON stage can validate against, within ``limit`` bytes.

    Beyond the meta-schema: nesting within ``MAX_SCHEMA_DEPTH`` (checking and
    validating recurse once per level), a string ``$schema``, every ``$ref``
    resolving inside the schema (nothing is fetched), and no reference loop
    that validation would follow forever.

    Raises:
        InvalidArgument: Naming ``start.response_format.json_schema`` and what is wrong.
    """
    name = "start.response_format.json_schema"
    size = len(schema.encode())
    if size > limit:
        raise InvalidArgument(name, f"is {size} bytes; the limit is {limit}")
    too_deep = InvalidArgument(name, f"nests deeper than {MAX_SCHEMA_DEPTH} levels")
    try:
        document = json.loads(schema)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(name, f"is not JSON: {exc.msg} at {exc.pos}") from None
    except RecursionError:
        raise too_deep from None
    if not isinstance(document, dict):
        # A boolean schema is valid JSON Schema, but backends take an object.
        raise InvalidArgument(name, "must be a JSON object")
    if _depth(document) > MAX_SCHEMA_DEPTH:
        raise too_deep
    if not isinstance(document.get("$schema", ""), str):
        raise InvalidArgument(name, "$schema must be a string naming a JSON Schema dialect")
    try:
        validator = schema_validator(schema)
    except SchemaError as exc:
        raise InvalidArgument(
            name,
            f"is not a valid JSON Schema: at {exc.json_path} ({exc.validator!r}): {exc.message}",
        ) from None
    _check_references(name, document, type(validator))


def _depth(document: object) -> int:
    """How deeply objects and arrays nest in a JSON value (a scalar is 0)."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, depth)
            pending += [(child, depth + 1) for child in value]
    return deepest


def _check_references(name: str, document: dict[str, object], cls: type[Validator]) -> None:
    """Every reference resolves inside the schema, and none loops on the same value.

    A reference the schema cannot resolve itself would be fetched over the
    network (or fail) when the output is validated, at the end of the
    generation; a loop of references and in-place keywords that never steps
    into the value would recurse until the stack ran out.
    """
    meta = cls.META_SCHEMA
    specification = referencing.jsonschema.specification_with(
        str(meta.get("$id") or meta.get("id") or ""), default=referencing.Specification.OPAQUE
    )
    root = specification.create_resource(document)
    uri = root.id() or ""
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(uri, root)
    successors: dict[int, list[object]] = {}
    pending = [(root, registry.crawl().resolver(base_uri=uri))]
    while pending:
        resource, resolver = pending.pop()
        pending += [(sub, resolver.in_subresource(sub)) for sub in resource.subresources()]
        contents = resource.contents
        if not isinstance(contents, dict):
            continue
        applied = [contents[keyword] for keyword in _IN_PLACE if keyword in contents]
        for keyword in _REFERENCES:
            reference = contents.get(keyword)
            if isinstance(reference, str):
                try:
                    applied.append(resolver.lookup(reference).contents)
                except referencing.exceptions.Unresolvable:
                    raise InvalidArgument(
                        name,
                        f"{keyword} {reference!r} does not resolve inside the schema "
                        "(references are never fetched)",
                    ) from None
        successors[id(contents)] = [
            schema for item in applied for schema in (item if isinstance(item, list) else [item])
        ]
    if _loops(successors):
        raise InvalidArgument(
            name, "a $ref loops back to its own schema without stepping into the value"
        )


def _loops(successors: dict[int, list[object]]) -> bool:
    """True when the graph (schema ids to the schemas applied to the same value) has a cycle."""
    done: set[int] = set()
    for start in successors:
        path: set[int] = set()
        pending: list[tuple[int, bool]] = [(start, True)]
        while pending:
            node, entering = pending.pop()
            if not entering:
                path.discard(node)
                done.add(node)
            elif node in path:
                return True
            elif node not in done:
                path.add(node)
                pending.append((node, False))
                pending += [(id(child), True) for child in successors.get(node, [])]
    return False
