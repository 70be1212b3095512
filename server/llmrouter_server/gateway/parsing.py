"""Request messages from their proto3 JSON, and where one that does not parse went wrong.

json_format's errors name the field only sometimes, and then as the JSON
spells it, with the oneof or message levels above it left out. When a message
does not parse, its fields are parsed one at a time, walking down into the
one that fails, so the error names it as every other error of the server
does: ``GenerateRequest.start.sampling.max_tokens``.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from llmrouter_server.api.decoding import Undecodable


def parse(request_type: type[Message], value: dict[str, Any]) -> Message | Undecodable:
    """The message, or an ``Undecodable`` naming the field that does not fit and why."""
    try:
        return json_format.ParseDict(value, request_type())
    except json_format.ParseError as error:
        said = str(error).split("\n", 1)[0]
        name = request_type.DESCRIPTOR.name
        descriptor: Any = request_type.DESCRIPTOR  # upb's type or the Python one
        field, reason = _failing(descriptor, value, name)
        return Undecodable(name, said, field, reason or _reason(said))


def _failing(descriptor: Descriptor, value: Any, path: str) -> tuple[str, str | None]:
    """The path of the first field of ``value`` that does not parse as ``descriptor``,
    and why when the parser's words would not say it."""
    if not isinstance(value, dict):
        return path, "must be a JSON object"
    message_type = message_factory.GetMessageClass(descriptor)
    for key, item in value.items():
        if _parses(message_type, {key: item}):
            continue
        field = descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name.get(key)
        if field is None:
            return f"{path}.{key}", None
        here = f"{path}.{field.name}"
        inner = field.message_type
        if inner is None or inner.full_name.startswith("google.protobuf.") or _is_map(field):
            return here, None
        if not field.is_repeated:
            return _failing(inner, item, here)
        if not isinstance(item, list):
            return here, "must be a JSON array"
        for index, element in enumerate(item):
            if not _parses(message_type, {key: [element]}):
                return _failing(inner, element, f"{here}[{index}]")
        return here, None
    return path, None


def _parses(message_type: type[Message], value: dict[str, Any]) -> bool:
    try:
        json_format.ParseDict(value, message_type())
    except json_format.ParseError:
        return False
    return True


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


_LOCATION = re.compile(r' at "?[\w.\[\]]+"?\.*$')
"""Where json_format's message says the bad value is, at its end."""


def _reason(said: str) -> str:
    """The parser's innermost reason, without the chain of fields above it and where."""
    reason = said.rpartition(" field: ")[2].removeprefix("Failed to parse ")
    return _LOCATION.sub("", reason).rstrip(".")
