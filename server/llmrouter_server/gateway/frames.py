"""The gateway's frames: JSON objects over WebSocket text frames.

Client frames open and feed calls (``id``, ``method``, ``message``, ``end``,
``cancel``, ``timeoutMs``, ``metadata``), authenticate (``auth``) or ping;
server frames carry a call's messages, its final status, or a pong. Messages
use the proto3 JSON mapping, the one ``json_format`` and protobuf-es share.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from llmrouter_server.api.status import rich_status
from llmrouter_server.errors import InvalidArgument, RouterError

_CALL_KEYS = frozenset({"id", "method", "message", "end", "cancel", "timeoutMs", "metadata"})

_LEADING_ID = re.compile(r'\s*\{\s*"id"\s*:\s*("(?:[^"\\]|\\.)*")')
"""A frame's id when it comes first, read without parsing the rest (a frame too
large to parse, or not JSON at all, is answered on its call when it can be)."""

OK: dict[str, Any] = {"code": 0}
"""An OK status, as a status frame carries it."""


@dataclass(slots=True)
class CallFrame:
    """A frame about one call."""

    id: str
    method: str | None = None
    message: dict[str, Any] | None = None
    end: bool = False
    cancel: bool = False
    timeout_ms: int | None = None
    metadata: tuple[tuple[str, str], ...] = field(default_factory=tuple)


@dataclass(slots=True)
class Ping:
    """``{"ping": value}``, answered with the same value."""

    value: Any


@dataclass(slots=True)
class Auth:
    """``{"auth": "Bearer <key>"}``, the first frame of a socket opened without credentials."""

    authorization: str


class FrameError(InvalidArgument):
    """A frame the gateway cannot read; ``call_id`` is the call to answer, or ``""``."""

    def __init__(self, call_id: str, field: str, message: str) -> None:
        super().__init__(field, message)
        self.call_id = call_id


def leading_id(text: str) -> str:
    """The id at the very start of a frame, or ``""``."""
    match = _LEADING_ID.match(text, 0, 1024)
    if match is None:
        return ""
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return ""
    return value if isinstance(value, str) else ""


def parse(text: str) -> CallFrame | Ping | Auth:
    """Reads one client frame.

    Raises:
        FrameError: Not JSON, not an object, or keys of the wrong type or unknown.
    """
    try:
        frame = json.loads(text)
    except ValueError as error:
        raise FrameError(leading_id(text), "frame", f"is not JSON: {error}") from None
    if not isinstance(frame, dict):
        raise FrameError("", "frame", f"must be a JSON object, got {type(frame).__name__}")
    if "ping" in frame and len(frame) == 1:
        return Ping(frame["ping"])
    if "auth" in frame and len(frame) == 1:
        if not isinstance(frame["auth"], str):
            raise FrameError("", "frame.auth", "must be a string: 'Bearer <key>'")
        return Auth(frame["auth"])
    call_id = frame.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise FrameError("", "frame.id", "every call frame needs an id, a non-empty string")
    unknown = sorted(frame.keys() - _CALL_KEYS)
    if unknown:
        raise FrameError(call_id, f"frame.{unknown[0]}", f"is not a frame key ({_keys()})")
    return CallFrame(
        id=call_id,
        method=_typed(frame, "method", str, call_id),
        message=_typed(frame, "message", dict, call_id),
        end=_typed(frame, "end", bool, call_id) or False,
        cancel=_typed(frame, "cancel", bool, call_id) or False,
        timeout_ms=_timeout(frame, call_id),
        metadata=_metadata(frame, call_id),
    )


def _typed(frame: dict[str, Any], key: str, kind: type, call_id: str) -> Any:
    value = frame.get(key)
    if value is not None and not isinstance(value, kind):
        raise FrameError(call_id, f"frame.{key}", f"must be a {_JSON_NAMES[kind]}")
    return value


_JSON_NAMES = {str: "string", dict: "JSON object", bool: "boolean"}


def _timeout(frame: dict[str, Any], call_id: str) -> int | None:
    value = frame.get("timeoutMs")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise FrameError(call_id, "frame.timeoutMs", "must be a positive whole number")
    return value


def _metadata(frame: dict[str, Any], call_id: str) -> tuple[tuple[str, str], ...]:
    value = _typed(frame, "metadata", dict, call_id) or {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise FrameError(call_id, f"frame.metadata.{key}", "must be a string")
    return tuple((key.lower(), item) for key, item in value.items())


def _keys() -> str:
    return ", ".join(sorted(_CALL_KEYS))


def message_frame(call_id: str, message: Message) -> str:
    """A call's response message."""
    return _dump({"id": call_id, "message": json_format.MessageToDict(message)})


def status_frame(call_id: str, error: RouterError | None) -> str:
    """A call's end: OK, or the error's ``google.rpc.Status`` with its details."""
    status = OK if error is None else json_format.MessageToDict(rich_status(error))
    return _dump({"id": call_id, "status": status})


def pong_frame(value: Any) -> str:
    """The answer to a ping."""
    return _dump({"pong": value})


def _dump(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
