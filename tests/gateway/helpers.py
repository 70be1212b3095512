"""What the gateway tests share: a WebSocket client that reads the calls of one socket
apart, the proto3 JSON of gRPC replies to compare with, and the scripted servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from grpc_status import rpc_status
from websockets.asyncio.client import ClientConnection, connect

from llmrouter_server.auth.principal import OPEN
from llmrouter_server.config import Config
from llmrouter_server.streams.generation import Generation
from tests.helpers import Served, read_responses
from tests.security.scripted import config

SUBPROTOCOL = "llmrouter.v1"

WAIT_SECONDS = 5.0
"""How long a test waits for a frame it expects."""

PONG = "<pong>"
"""The queue pongs are read from."""

TIMING_KEYS = frozenset(
    {
        "time",
        "timings",
        "producedAt",
        "sincePrevious",
        "elapsed",
        "eta",
        "timeToFirstToken",
        "tokensPerSecond",
        "createdAt",
        "finishedAt",
        "generatedAt",
    }
)
"""Fields whose values depend on when something ran: present or not, never equal."""

Frame = dict[str, Any]


def gateway_config(sections: dict[str, Any] | None = None, **gateway: Any) -> Config:
    """The scripted ``fake-model`` (default) and ``held-model`` routes with the gateway
    on (``gateway`` its settings) and other ``sections`` of the configuration."""
    return config(gateway={"port": 0, **gateway}, **(sections or {}))


def ws_url(served: Served) -> str:
    return f"ws://127.0.0.1:{served.server.gateway_port}/v1/ws"


def http_url(served: Served, path: str = "/") -> str:
    return f"http://127.0.0.1:{served.server.gateway_port}{path}"


def client_options(**options: Any) -> dict[str, Any]:
    """``connect`` options: the gateway's subprotocol, no proxy, no client pings."""
    return {
        "subprotocols": [SUBPROTOCOL],
        "proxy": None,
        "ping_interval": None,
        "close_timeout": 2,
        "compression": None,
        **options,
    }


class Client:
    """One socket: frames sent as JSON, frames received sorted by call id.

    The socket is read only once a test asks for a frame (``next``), so a test
    that must not read (flow control) uses ``ws`` itself and never ``next``.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._queues: dict[str, asyncio.Queue[Frame]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._pings = 0

    async def send(self, frame: Frame | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def open(self, call_id: str, method: str, message: Any = None, **keys: Any) -> None:
        """Opens a call; ``message`` is a dict or a protobuf message."""
        frame: Frame = {"id": call_id, "method": method, **keys}
        if message is not None:
            frame["message"] = as_json(message) if isinstance(message, Message) else message
        await self.send(frame)

    async def next(self, call_id: str) -> Frame:
        """The next frame of ``call_id`` (``PONG`` for pongs)."""
        queue = self._queues.setdefault(call_id, asyncio.Queue())
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())
        getter = asyncio.ensure_future(queue.get())
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                await asyncio.wait({getter, self._reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        raise AssertionError(f"the socket closed ({self.ws.close_code}) before {call_id!r} ended")

    async def message(self, call_id: str) -> Any:
        """The next frame of ``call_id``, which must be a response message."""
        frame = await self.next(call_id)
        assert set(frame) == {"id", "message"}, frame
        return frame["message"]

    async def rest(self, call_id: str) -> tuple[list[Any], Frame]:
        """The call's messages up to its end, and its status."""
        messages = []
        while "status" not in (frame := await self.next(call_id)):
            messages.append(frame["message"])
        assert set(frame) == {"id", "status"}, frame
        return messages, frame["status"]

    async def call(self, call_id: str, method: str, message: Any) -> tuple[list[Any], Frame]:
        """A whole call of one message: its responses and its status."""
        await self.open(call_id, method, message, end=True)
        return await self.rest(call_id)

    async def unary(self, method: str, message: Any) -> Any:
        """The one response of a unary call that must succeed."""
        messages, status = await self.call(f"{method}-call", method, message)
        assert status == {"code": 0}
        assert len(messages) == 1
        return messages[0]

    async def round_trip(self) -> None:
        """A ping answered: every frame the server sent before the pong has been read."""
        self._pings += 1
        await self.send({"ping": self._pings})
        assert await self.next(PONG) == {"pong": self._pings}

    def pending(self, call_id: str) -> int:
        """Frames of ``call_id`` received and not yet taken."""
        queue = self._queues.get(call_id)
        return 0 if queue is None else queue.qsize()

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            key = PONG if "pong" in frame else frame["id"]
            self._queues.setdefault(key, asyncio.Queue()).put_nowait(frame)

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._reader


@asynccontextmanager
async def socket(served: Served, **options: Any) -> AsyncIterator[Client]:
    """A socket to the served gateway (``options`` go to ``connect``); closed on exit."""
    async with connect(ws_url(served), **client_options(**options)) as ws:
        client = Client(ws)
        try:
            yield client
        finally:
            await client.stop()


def as_json(message: Message) -> Any:
    """A message in the proto3 JSON mapping, as the gateway's frames carry it."""
    return json_format.MessageToDict(message)


def grpc_status(error: grpc.aio.AioRpcError) -> Any:
    """A failed gRPC call's rich status (``grpc-status-details-bin``) as JSON."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    return as_json(status)


async def read_json(call: Any, limit: int | None = None) -> list[Any]:
    """A gRPC call's responses as JSON (``call.read()``), to its end or ``limit`` of them."""
    return [as_json(response) for response in await read_responses(call, limit)]


def error_info(reason: str, **metadata: str) -> dict[str, Any]:
    """A ``google.rpc.ErrorInfo`` detail of this server, as JSON."""
    info: dict[str, Any] = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "llmrouter.v1",
    }
    if metadata:
        info["metadata"] = metadata
    return info


def invalid(field: str, message: str, **metadata: str) -> dict[str, Any]:
    """An INVALID_ARGUMENT status (or command error) about ``field``."""
    said = f"{field}: {message}"
    violation = {"field": field, "description": said}
    return {
        "code": 3,
        "message": said,
        "details": [
            error_info("INVALID_ARGUMENT", **metadata, field=field),
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]},
        ],
    }


def masked(value: Any) -> Any:
    """``value`` with every timing field's value replaced by ``"*"``."""
    if isinstance(value, dict):
        return {k: "*" if k in TIMING_KEYS else masked(item) for k, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


def renamed(value: Any, old: str, new: str) -> Any:
    """``value`` with the string ``old`` replaced by ``new`` wherever it occurs."""
    return json.loads(json.dumps(value).replace(old, new))


def generation(served: Served, stream_id: str) -> Generation:
    return served.server.generations.registry.get(OPEN, stream_id)


def events(messages: list[Any]) -> list[Any]:
    """The events of Generate responses (rejections left out)."""
    return [message["event"] for message in messages if "event" in message]


def offsets(messages: list[Any]) -> list[int]:
    return [int(event.get("offset", 0)) for event in events(messages)]


def joined(messages: list[Any]) -> str:
    """The text of the chunk events of Generate responses."""
    return "".join(event["chunk"].get("text", "") for event in events(messages) if "chunk" in event)


def kind(event: Any) -> str:
    """The set member of an event's ``kind`` oneof."""
    (name,) = set(event) - {"streamId", "offset", "time"}
    return str(name)
