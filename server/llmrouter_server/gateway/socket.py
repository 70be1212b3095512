"""One WebSocket: the calls multiplexed on it, each run as a task of its own.

A call's task runs the method's handler (the gRPC servicer's) over a bounded
queue of request messages and writes each response as a frame, awaiting the
socket before asking the handler for the next one: when the peer stops
reading, the socket's buffers fill, the write waits, and the generation's
window stops the backend, as for a gRPC caller. When the request queue is
full the socket is not read until it has room (HTTP/2 flow control's part).

Every call ends with one status frame, except when the socket itself is gone:
then its calls are cancelled as a gRPC call whose client went away, and a
Generate call's generation follows its disconnect policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass

from aiohttp import WSMsgType, web
from google.protobuf.message import Message

from llmrouter_server.api.decode import trace_metadata
from llmrouter_server.api.decoding import Undecodable
from llmrouter_server.auth.principal import Principal
from llmrouter_server.config_gateway import GatewayConfig
from llmrouter_server.errors import (
    Cancelled,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    ResourceExhausted,
    RouterError,
    Unauthenticated,
    Unimplemented,
)
from llmrouter_server.gateway import frames
from llmrouter_server.gateway.methods import Method

logger = logging.getLogger(__name__)

PENDING_REQUESTS = 16
"""Request messages a call may have waiting for its handler; with more, the socket
is not read until the handler takes one."""

UNAUTHENTICATED_CLOSE = 4401
"""The close code of a socket whose first frame did not authenticate it."""

_END = None
"""Put on a call's request queue after its last message."""


@dataclass(eq=False)
class _Call:
    id: str
    method: Method
    requests: asyncio.Queue[Message | Undecodable | None]
    task: asyncio.Task[None] | None = None
    started: bool = False
    """True once the task runs: a task cancelled before it first ran would run nothing,
    its status and clean-up included, so ``stop`` only cancels a started one."""
    ended_requests: bool = False
    ending: RouterError | None = None
    """Set when the gateway ends the call (a cancel frame, a frame over the limit)."""

    async def end_requests(self) -> None:
        if not self.ended_requests:
            self.ended_requests = True
            await self.requests.put(_END)

    def stop(self, error: RouterError) -> None:
        if self.ending is None:
            self.ending = error
            if self.started and self.task is not None:
                self.task.cancel()


class Socket:
    """Serves the calls of one accepted WebSocket."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        methods: dict[str, Method],
        config: GatewayConfig,
        principal: Principal | None,
        authenticate: Callable[[str], Principal],
    ) -> None:
        """``principal`` is None when the upgrade carried no credentials and the
        server needs them: the first frame must then be ``{"auth": ...}``."""
        self._ws = ws
        self._methods = methods
        self._config = config
        self._principal = principal
        self._authenticate = authenticate
        self._calls: dict[str, _Call] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    async def idle(self) -> None:
        """Returns once no call is open on the socket."""
        await self._idle.wait()

    async def serve(self) -> None:
        """Reads frames until the socket closes, then cancels the calls left."""
        try:
            if self._principal is None and not await self._authenticated():
                return
            async for received in self._ws:
                if received.type is WSMsgType.TEXT:
                    await self._on_text(received.data)
                elif received.type is WSMsgType.BINARY:
                    await self._send_status("", frames.FrameError("", "frame", "must be text"))
        finally:
            calls = [call.task for call in self._calls.values() if call.task is not None]
            for task in calls:
                task.cancel()
            await asyncio.gather(*calls, return_exceptions=True)

    async def _authenticated(self) -> bool:
        """Takes the first frame as credentials; closes the socket unless they are good."""
        try:
            received = await self._ws.receive(timeout=self._config.heartbeat_seconds)
            frame = frames.parse(received.data) if received.type is WSMsgType.TEXT else None
            if not isinstance(frame, frames.Auth):
                raise Unauthenticated('the first frame must be {"auth": "Bearer <key>"}')
            self._principal = self._authenticate(frame.authorization)
        except (RouterError, TimeoutError) as error:
            reason = error.message if isinstance(error, RouterError) else "no credentials in time"
            await self._ws.close(code=UNAUTHENTICATED_CLOSE, message=reason.encode()[:120])
            return False
        return True

    async def _on_text(self, text: str) -> None:
        size = len(text) if text.isascii() else len(text.encode())
        if size > self._config.max_frame_bytes:
            call_id = frames.leading_id(text)
            error = ResourceExhausted(
                f"frame: {size} bytes, over gateway.max_frame_bytes "
                f"({self._config.max_frame_bytes})"
            )
            await self._fail(call_id, error)
            return
        try:
            frame = frames.parse(text)
        except frames.FrameError as error:
            await self._fail(error.call_id, error)
            return
        if isinstance(frame, frames.Ping):
            await self._send(frames.pong_frame(frame.value))
        elif isinstance(frame, frames.Auth):
            await self._send_status("", InvalidArgument("frame.auth", "comes first or not at all"))
        else:
            await self._on_call_frame(frame)

    async def _on_call_frame(self, frame: frames.CallFrame) -> None:
        call = self._calls.get(frame.id)
        if call is None:
            if frame.method is None and frame.message is None and (frame.cancel or frame.end):
                return  # the call has ended already: nothing to give up or half-close
            opened = self._open(frame)
            if isinstance(opened, RouterError):
                await self._send_status(frame.id, opened)
                return
            call = opened
        if frame.cancel:
            call.stop(Cancelled("the client cancelled the call"))
            return
        if frame.message is not None:
            if call.ended_requests:
                call.stop(InvalidArgument("frame.message", "comes after the call's end"))
                return
            request: Message | Undecodable = call.method.parse(frame.message)
            if frame.method is not None and frame.method != call.method.name:
                request = _wrong_method(call, frame.method)
            await call.requests.put(request)
            if not call.method.client_streaming:
                await call.end_requests()
        if frame.end:
            await call.end_requests()

    def _open(self, frame: frames.CallFrame) -> _Call | RouterError:
        if frame.method is None:
            return InvalidArgument("frame.method", "a call's first frame names its method")
        method = self._methods.get(frame.method)
        if method is None:
            return Unimplemented(
                f"frame.method: {frame.method!r} is not a RouterService method "
                f"({', '.join(self._methods)})"
            )
        if len(self._calls) >= self._config.max_calls_per_socket:
            return ResourceExhausted(
                f"at most {self._config.max_calls_per_socket} open calls per socket "
                "(gateway.max_calls_per_socket)"
            )
        call = _Call(frame.id, method, asyncio.Queue(maxsize=PENDING_REQUESTS))
        self._calls[frame.id] = call
        self._idle.clear()
        call.task = asyncio.create_task(self._run(call, frame.timeout_ms, frame.metadata))
        return call

    async def _fail(self, call_id: str, error: RouterError) -> None:
        """Ends the open call ``call_id`` with ``error`` (its task writes the status),
        or answers ``error`` on that id when no call is open with it."""
        call = self._calls.get(call_id)
        if call is None:
            await self._send_status(call_id, error)
        else:
            call.stop(error)

    async def _run(
        self, call: _Call, timeout_ms: int | None, metadata: tuple[tuple[str, str], ...]
    ) -> None:
        call.started = True
        try:
            error = call.ending or await self._serve(call, timeout_ms, metadata)
        except asyncio.CancelledError:
            if call.ending is None:
                raise  # the socket is gone: no status to write
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            error = call.ending
        except ConnectionError:
            return  # the socket went away while writing
        except Exception:
            logger.exception("gateway %s call %r failed", call.method.name, call.id)
            error = Internal("the call failed inside the server; its log has the details")
        finally:
            self._calls.pop(call.id, None)
            if not self._calls:
                self._idle.set()
        await self._send_status(call.id, error)

    async def _serve(
        self, call: _Call, timeout_ms: int | None, metadata: tuple[tuple[str, str], ...]
    ) -> RouterError | None:
        """Writes the call's responses; returns the error that ended it, if any."""
        timeout = None if timeout_ms is None else timeout_ms / 1000
        deadline = None if timeout is None else time.monotonic() + timeout
        assert self._principal is not None  # set before any frame is read
        responses = call.method.serve(
            self._principal, _drain(call.requests), deadline, trace_metadata(metadata)
        )
        try:
            async with asyncio.timeout(timeout), aclosing(responses):
                async for response in responses:
                    await self._send(frames.message_frame(call.id, response))
        except RouterError as failure:
            return failure
        except TimeoutError:
            return DeadlineExceeded(f"the call's timeoutMs ({timeout_ms}) passed")
        return None

    async def _send_status(self, call_id: str, error: RouterError | None) -> None:
        # When the socket is gone, so is whoever would have read the status.
        with contextlib.suppress(ConnectionError):
            await self._send(frames.status_frame(call_id, error))

    async def _send(self, frame: str) -> None:
        try:
            await self._ws.send_str(frame)
        except ConnectionError:
            logger.debug("gateway socket closed while writing")
            raise


async def _drain(
    queue: asyncio.Queue[Message | Undecodable | None],
) -> AsyncIterator[Message | Undecodable]:
    while (request := await queue.get()) is not _END:
        yield request


def _wrong_method(call: _Call, method: str) -> Undecodable:
    name = call.method.request_type.DESCRIPTOR.name
    said = f"is {method!r} but call {call.id!r} is a {call.method.name} call"
    return Undecodable(name, said, "frame.method", said)
