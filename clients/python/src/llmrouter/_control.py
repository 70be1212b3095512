"""Control: operator commands on any generation, each answered by its own reply."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import grpc

from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from ._errors import RouterError
from ._requests import Requests


class Control:
    """An operator channel on one Control call.

    Each method sends one command and returns its reply, or raises
    :class:`RouterError`: a command the server refuses (an unknown stream id,
    pausing a finished generation) carries the code and the details the server
    gave it (``reason`` is the ErrorInfo reason, such as ``NOT_FOUND``;
    ``bad_request`` lists invalid fields), and the channel stays open. Iterate
    :meth:`changes` while watching. Leaving an ``async with`` block ends the
    channel.
    """

    def __init__(self, stub: svc_grpc.RouterServiceAsyncStub) -> None:
        self._requests: Requests[svc_pb.ControlRequest] = Requests()
        self._pending: dict[str, asyncio.Future[svc_pb.ControlResponse]] = {}
        self._changes: asyncio.Queue[ops_pb.StreamStatus | None] = asyncio.Queue()
        self._next_id = 0
        self.error: RouterError | None = None
        """Why the channel ended; None while it is open."""
        self._call = stub.Control(self._requests.messages())
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def pause(self, stream_id: str, reason: str = "") -> ops_pb.StreamStatus:
        """Pauses a running generation; returns its status."""
        pause = ops_pb.PauseStreamCommand(stream_id=stream_id, reason=reason)
        return (await self._do(pause=pause)).status

    async def resume(self, stream_id: str) -> ops_pb.StreamStatus:
        """Resumes a paused generation; returns its status."""
        return (await self._do(resume=ops_pb.ResumeStreamCommand(stream_id=stream_id))).status

    async def cancel(self, stream_id: str, reason: str = "") -> ops_pb.StreamStatus:
        """Cancels a generation; returns its status once it has ended (state CANCELLED).

        The generation ends as when its caller cancels it: its log ends with
        one ``completed`` event (finish reason CANCELLED, ``cancelled_by``
        CANCELLED_BY_OPERATOR, ``cancel_reason`` this reason, the usage so far)
        that its Generate caller and every subscriber get at once, even with no
        credits left. The caller's iteration ends normally, without an error;
        subscriptions end normally too.
        """
        cancel = ops_pb.CancelStreamCommand(stream_id=stream_id, reason=reason)
        return (await self._do(cancel=cancel)).status

    async def status(self, stream_id: str) -> ops_pb.StreamStatus:
        """The status of one generation."""
        return (await self._do(status=ops_pb.StreamStatusCommand(stream_id=stream_id))).status

    async def list(self, *states: ops_pb.StreamState) -> list[ops_pb.StreamStatus]:
        """The generations in the given states (all when none is given)."""
        reply = await self._do(list=ops_pb.ListStreamsCommand(states=states))
        return list(reply.list.streams)

    async def watch(self, *stream_ids: str) -> builtins.list[ops_pb.StreamStatus]:
        """Pushes later state changes of the named generations (all when none) to changes().

        Returns:
            Their current statuses. An unknown stream id raises ``NOT_FOUND``
            and watches nothing.
        """
        reply = await self._do(watch=ops_pb.WatchStreamsCommand(stream_ids=stream_ids))
        return list(reply.list.streams)

    async def unwatch(self, *stream_ids: str) -> None:
        """Stops pushing state changes of the named generations (all when none)."""
        await self._do(unwatch=ops_pb.UnwatchStreamsCommand(stream_ids=stream_ids))

    async def changes(self) -> AsyncIterator[ops_pb.StreamStatus]:
        """The pushed state changes; the iteration ends when the channel does."""
        while (change := await self._changes.get()) is not None:
            yield change

    async def aclose(self) -> None:
        """Ends the channel; waiting commands raise."""
        self._requests.close()
        self._call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def __aenter__(self) -> Control:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _do(self, **command: Any) -> svc_pb.ControlResponse:
        if self.error is not None:
            raise self.error
        self._next_id += 1
        request_id = str(self._next_id)
        reply = asyncio.get_running_loop().create_future()
        self._pending[request_id] = reply
        self._requests.put(svc_pb.ControlRequest(request_id=request_id, **command))
        response: svc_pb.ControlResponse = await reply
        if response.HasField("error"):
            raise RouterError.from_command_error(response.error)
        return response

    async def _read(self) -> None:
        """Dispatches replies and changes until the call ends, then fails what still waits."""
        try:
            async for response in self._call:
                self._dispatch(response)
            self.error = RouterError(grpc.StatusCode.CANCELLED, "the Control call has ended")
        except grpc.aio.AioRpcError as error:
            self.error = RouterError.from_rpc_error(error)
        finally:
            self._changes.put_nowait(None)
            failure = self.error or RouterError(grpc.StatusCode.CANCELLED, "closed")
            for reply in self._pending.values():
                if not reply.done():
                    reply.set_exception(failure)
            self._pending.clear()

    def _dispatch(self, response: svc_pb.ControlResponse) -> None:
        if not response.request_id:
            if response.HasField("status"):
                self._changes.put_nowait(response.status)
            return
        reply = self._pending.pop(response.request_id, None)
        if reply is not None and not reply.done():
            reply.set_result(response)
