"""A scripted fault upstream on a real loopback socket, for routing tests.

``FaultUpstream`` speaks both provider dialects the router has backends for:
OpenAI's ``POST /v1/chat/completions`` and Anthropic's ``POST /v1/messages``,
each as a server-sent event stream of the tokens " t0", " t1", ... A script
picks one ``Fault`` per request: an error status (with ``Retry-After``), a
dropped connection, a stall, a malformed event or slow tokens. Every response
closes its connection (one request per connection), so connections accepted
and closed tell exactly what the router opened and gave back.

A refused connection is not a fault of a server: ``closed_port_url()`` is a
loopback URL where nothing listens.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.routing.fault_dialects import DIALECTS, Dialect

FaultKind = Literal["none", "status", "drop", "stall", "malformed", "slow"]


@dataclass(frozen=True, slots=True)
class Fault:
    """What one response does; build one with the functions below."""

    kind: FaultKind = "none"
    """Which fault; ``none`` streams every token and the end marker."""
    after: int = 0
    """``drop``, ``stall``, ``malformed``: tokens written before the fault."""
    status: int = 0
    """``status``: the HTTP status code."""
    retry_after: float | None = None
    """``status``: the ``Retry-After`` header in seconds, if any."""
    body: str | None = None
    """``status``: the response body; None writes the dialect's JSON error."""
    delay: float = 0.0
    """``slow``: seconds between tokens."""


OK = Fault()
"""Every token, then the end marker."""


def status(code: int, retry_after: float | None = None, body: str | None = None) -> Fault:
    """An error status with a JSON error body and, when given, ``Retry-After``."""
    return Fault("status", status=code, retry_after=retry_after, body=body)


def drop_after(tokens: int) -> Fault:
    """``tokens`` tokens, then the connection closes without the end marker."""
    return Fault("drop", after=tokens)


def stall_after(tokens: int) -> Fault:
    """``tokens`` tokens (0: only the headers), then nothing until the client leaves."""
    return Fault("stall", after=tokens)


def malformed_after(tokens: int) -> Fault:
    """``tokens`` tokens, then ``data: {not json``; open until the client leaves."""
    return Fault("malformed", after=tokens)


def slow(delay: float) -> Fault:
    """Every token, ``delay`` seconds apart."""
    return Fault("slow", delay=delay)


Script = Fault | Sequence[Fault] | Callable[[int], Fault]
"""One fault for every request; a list consumed one per request (the last
one repeats); or a function of the request's index (from 0)."""


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the upstream read it."""

    method: str
    """The HTTP method."""
    path: str
    """The request target, e.g. ``/v1/messages``."""
    headers: dict[str, str]
    """Header values by lower-case name."""
    body: dict[str, Any]
    """The parsed JSON body."""
    time: float
    """When the request had arrived (the event loop's clock)."""

    @property
    def continuation(self) -> str:
        """The text of a trailing assistant message (a continuation), else ""."""
        messages = self.body.get("messages") or []
        if not messages or messages[-1].get("role") != "assistant":
            return ""
        content = messages[-1].get("content")
        if isinstance(content, list):  # Anthropic content blocks
            return "".join(block.get("text", "") for block in content)
        return str(content or "")


@dataclass
class FaultUpstream:
    """An OpenAI- and Anthropic-compatible streaming server that fails on cue.

    Attributes:
        tokens: Tokens in a whole answer: " t0" ... " t{tokens-1}".
        script: The fault of each request (see ``Script``); may be changed
            between requests.
        requests: Every request received, in order.
        sent: Tokens written per request, in order (a continuation's count
            starts after the tokens it skipped).
        accepted: Connections accepted.
        closed: Connections ended (by either side).
        port: The listening port, once started.
    """

    tokens: int = 8
    script: Script = OK
    requests: list[Received] = field(default_factory=list, init=False)
    sent: list[int] = field(default_factory=list, init=False)
    accepted: int = field(default=0, init=False)
    closed: int = field(default=0, init=False)
    port: int = field(default=0, init=False)
    _server: asyncio.Server | None = field(default=None, init=False, repr=False)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition, init=False, repr=False)

    @property
    def base_url(self) -> str:
        """The ``/v1`` API root to configure a backend with."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies received, in order."""
        return [request.body for request in self.requests]

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet ended."""
        return self.accepted - self.closed

    async def start(self) -> str:
        """Starts listening on a free loopback port; returns ``base_url``."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.base_url

    async def stop(self) -> None:
        """Stops listening and ends every open connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def wait_closed(self, count: int, seconds: float = 2.0) -> None:
        """Waits until ``count`` connections have ended.

        Raises:
            AssertionError: Fewer ended within ``seconds``.
        """
        await self._wait(lambda: self.closed >= count, seconds, f"{count} closed")

    async def wait_idle(self, seconds: float = 2.0) -> None:
        """Waits until no connection is open.

        Raises:
            AssertionError: A connection is still open after ``seconds``.
        """
        await self._wait(lambda: self.open_connections == 0, seconds, "no open connection")

    async def _wait(self, done: Callable[[], bool], seconds: float, what: str) -> None:
        try:
            async with asyncio.timeout(seconds), self._changed:
                await self._changed.wait_for(done)
        except TimeoutError:
            raise AssertionError(
                f"expected {what} within {seconds:g} s; accepted {self.accepted}, "
                f"closed {self.closed}"
            ) from None

    def fault_for(self, index: int) -> Fault:
        """The scripted fault of request ``index`` (from 0)."""
        script = self.script
        if isinstance(script, Fault):
            return script
        if callable(script):
            return script(index)
        return script[min(index, len(script) - 1)]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        await self._count(accepted=1)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client left first
        except asyncio.CancelledError:
            pass  # stop() ends the connection; the task ends without an error to report
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._handlers.discard(task)
            await self._count(closed=1)

    async def _count(self, *, accepted: int = 0, closed: int = 0) -> None:
        async with self._changed:
            self.accepted += accepted
            self.closed += closed
            self._changed.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        dialect = DIALECTS.get(request.path)
        if dialect is None:
            writer.write(_head(404, "application/json") + b'{"error": "not found"}')
            return
        index = len(self.requests)
        self.requests.append(request)
        self.sent.append(0)
        fault = self.fault_for(index)
        if fault.kind == "status":
            writer.write(_status_response(dialect, fault))
            return
        writer.write(_head(200, "text/event-stream"))
        skip = len(request.continuation.split())
        await self._stream(index, dialect, fault, skip, reader, writer)

    async def _stream(
        self,
        index: int,
        dialect: Dialect,
        fault: Fault,
        skip: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        stop = self.tokens if fault.kind in ("none", "slow") else skip + fault.after
        if fault.kind != "stall" or fault.after:
            writer.write(dialect.opening())
        for number in range(skip, min(stop, self.tokens)):
            writer.write(dialect.token(f" t{number}"))
            await writer.drain()
            self.sent[index] += 1
            if fault.delay:
                await asyncio.sleep(fault.delay)
        if fault.kind in ("none", "slow"):
            writer.write(dialect.closing(self.sent[index]))
        elif fault.kind == "malformed":
            writer.write(dialect.malformed())
        await writer.drain()
        if fault.kind in ("stall", "malformed"):
            await reader.read()  # b"" once the client closes its side


async def _read_request(reader: asyncio.StreamReader) -> Received:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    request_line, *lines = head.split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = json.loads(await reader.readexactly(length)) if length else {}
    return Received(method, path, headers, body, asyncio.get_running_loop().time())


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    529: "Overloaded",
}


def _head(code: int, content_type: str, extra: dict[str, str] | None = None) -> bytes:
    lines = [
        f"HTTP/1.1 {code} {_REASONS.get(code, 'Error')}",
        f"content-type: {content_type}",
        "connection: close",
        *(f"{name}: {value}" for name, value in (extra or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status_response(dialect: Dialect, fault: Fault) -> bytes:
    body = fault.body if fault.body is not None else dialect.error(fault.status)
    extra = {"content-length": str(len(body.encode()))}
    if fault.retry_after is not None:
        extra["retry-after"] = f"{fault.retry_after:g}"
    return _head(fault.status, "application/json", extra) + body.encode()


_RESERVED: list[socket.socket] = []


def closed_port_url() -> str:
    """A ``/v1`` URL on a loopback port where nothing listens: connections are refused.

    The port stays bound (without listening) until the process exits, so no
    other server can take it meanwhile.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _RESERVED.append(sock)
    atexit.register(sock.close)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
