"""JSON output: snapshots of the value so far, and the final value's validation.

The stage passes text on as it comes (it holds nothing back) and attaches to
a piece the value parsed so far, re-serialized as compact JSON text, when it
differs from the last one sent. A snapshot shows only what the final value
will contain: the entries before the last are complete, and the one still
being written is a prefix of its final form. Strings grow as they are
written (``"ab`` shows ``"ab"``); an object key appears with its value;
a number, ``true``, ``false`` or ``null`` appears only once it is complete,
because ``1`` may still become ``12`` (jiter's partial mode would show it).

At the end of the output the whole text must be exactly one JSON value
(whitespace around it allowed) and satisfy the request's JSON Schema, if
any; otherwise ``flush`` raises ``JsonOutputInvalid`` with the full text.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import jiter
import referencing
from jsonschema import exceptions, protocols, validators

from llmrouter_server.errors import JsonOutputInvalid
from llmrouter_server.shaping.stage import Piece

_NUMBER_CHARS = frozenset("0123456789+-.eE")
_NUMBER_START = frozenset("-0123456789")


def dump(value: Any) -> str:
    """The compact JSON text of a value."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def schema_validator(schema: str) -> protocols.Validator:
    """A validator for a JSON Schema, of the draft it declares (2020-12 when none).

    Raises:
        jsonschema.exceptions.SchemaError: The schema is not a valid JSON Schema.
        json.JSONDecodeError: The schema is not JSON.
    """
    document = json.loads(schema)
    cls = validators.validator_for(document, default=validators.Draft202012Validator)
    cls.check_schema(document)
    # An empty registry: a ``$ref`` resolves inside the schema or not at all, never
    # by fetching a URL (request validation refuses such schemas before this).
    return cls(document, registry=referencing.Registry())


class JsonStage:
    """Streams snapshots of a JSON value and validates it at the end."""

    def __init__(self, schema: str = "") -> None:
        """Sets up the stage.

        Args:
            schema: A JSON Schema the final value must satisfy (already checked
                by request validation), or empty.
        """
        self._validator = schema_validator(schema) if schema else None
        self._text = ""
        self._in_string = False
        self._escaped = False
        self._last: str | None = None
        self._flushed = False

    @property
    def held(self) -> str:
        """Nothing: text passes on at once."""
        return ""

    @property
    def done(self) -> bool:
        """Never: the end of the output decides."""
        return False

    def feed(self, piece: Piece) -> list[Piece]:
        """Passes ``piece`` on, with a snapshot when the value so far changed."""
        if not piece.text or self._flushed:
            return [piece]
        self._text += piece.text
        self._scan(piece.text)
        snapshot = self._snapshot()
        if snapshot is None or snapshot == self._last:
            return [piece]
        self._last = snapshot
        return [replace(piece, snapshot=snapshot)]

    def flush(self, *, complete: bool = True) -> list[Piece]:
        """The final value as a complete snapshot; nothing when the output was cut short.

        Raises:
            JsonOutputInvalid: The text is not one JSON value, or fails the schema.
        """
        if self._flushed or not complete:
            return []
        self._flushed = True
        try:
            value = jiter.from_json(self._text.encode(), allow_inf_nan=False)
        except ValueError as exc:
            raise JsonOutputInvalid(
                f"output is not valid JSON: {exc}", text=self._text, rule="json"
            ) from None
        if self._validator is not None:
            error = exceptions.best_match(self._validator.iter_errors(value))
            if error is not None:
                raise JsonOutputInvalid(
                    f"output does not match the JSON schema: {error.json_path}: {error.message}"
                    f" (rule {error.validator!r})",
                    text=self._text,
                    path=error.json_path,
                    rule=str(error.validator),
                    detail=error.message,
                )
        return [Piece(snapshot=dump(value), complete=True)]

    def due_in(self) -> float | None:
        """Never: nothing is held."""
        return None

    def tick(self) -> list[Piece]:
        """Nothing is released by time."""
        return []

    def _scan(self, text: str) -> None:
        """Tracks whether the text so far ends inside a string."""
        for char in text:
            if self._escaped:
                self._escaped = False
            elif char == "\\":
                self._escaped = self._in_string
            elif char == '"':
                self._in_string = not self._in_string

    def _snapshot(self) -> str | None:
        """The value so far as JSON text, or None before anything of it is known."""
        text = self._text if self._in_string else _without_trailing_number(self._text)
        try:
            value = jiter.from_json(
                text.encode(), partial_mode="trailing-strings", allow_inf_nan=False
            )
        except ValueError:
            return None
        return dump(value)


def _without_trailing_number(text: str) -> str:
    """``text`` without a number at its end, which more digits may still extend."""
    end = len(text)
    start = end
    while start > 0 and text[start - 1] in _NUMBER_CHARS:
        start -= 1
    if start < end and text[start] in _NUMBER_START:
        return text[:start]
    return text
