"""Generation: one generation on one Generate call, iterated for its events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType

import grpc

from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from ._errors import RouterError
from ._reconnect import Credits, Cursor, Reconnect, wait_to_reconnect
from ._requests import Requests

_RESTART = gen_pb.MID_STREAM_ACTION_RESTART

_Call = grpc.aio.StreamStreamCall[svc_pb.GenerateRequest, svc_pb.GenerateResponse]


@dataclass(frozen=True)
class Result:
    """The whole output of a generation."""

    text: str
    """The concatenated chunks."""
    completed: ev_pb.Completed
    """The last event: finish reason, usage, timings and, when cancelled, who and why."""

    @property
    def cancelled_by(self) -> ev_pb.CancelledBy:
        """Who cancelled it; ``CANCELLED_BY_UNSPECIFIED`` when it was not cancelled.

        ``CANCELLED_BY_CALLER`` (:meth:`Generation.cancel`, or the call ended
        under the CANCEL disconnect policy), ``CANCELLED_BY_OPERATOR``
        (:meth:`Control.cancel`), ``CANCELLED_BY_DETACH_TIMEOUT`` or
        ``CANCELLED_BY_SHUTDOWN``.
        """
        return self.completed.cancelled_by

    @property
    def cancel_reason(self) -> str:
        """Why it was cancelled, as the canceller gave it; empty when it was not cancelled."""
        return self.completed.cancel_reason


class Generation:
    """One generation: an async iterator of its events in offset order.

    The call starts when the iteration does; a failed generation raises
    :class:`RouterError`. A cancelled one does not: whoever cancels it (this
    caller, an operator, a detach TTL, a server shutdown), the iteration ends
    normally with a ``completed`` event whose finish reason is CANCELLED (see
    :meth:`cancel`). The steering methods ``pause``, ``resume``, ``cancel`` and
    ``grant`` are coroutines, like :class:`Control`'s: each queues its request
    on the call and returns; its effect shows in the events. They may be
    awaited at any time, also before the iteration starts, and do nothing once
    the call has ended. Leaving an ``async with`` block (or ``aclose()``) ends
    the call early.
    """

    def __init__(
        self,
        stub: svc_grpc.RouterServiceAsyncStub,
        first: svc_pb.GenerateRequest,
        reconnect: Reconnect | None = None,
    ) -> None:
        """Starts nothing yet: the call opens when the iteration starts.

        Args:
            stub: The generated stub.
            first: The call's first request, ``start`` or ``attach``.
            reconnect: Re-attach after a lost call.
        """
        self._stub = stub
        self._reconnect = reconnect
        self._requests = Requests(first)
        self._call: _Call | None = None
        self._events: AsyncIterator[ev_pb.StreamEvent] | None = None
        self._attempts = 0
        self._attaching = False
        """True while the call is a re-attach that has delivered nothing yet."""
        if first.HasField("attach"):
            self._cursor = Cursor(first.attach.from_offset)
            self._credits = Credits(first.attach.flow)
            self._stream_id = first.attach.stream_id
        else:
            self._cursor = Cursor()
            self._credits = Credits(first.start.flow)
            self._stream_id = first.start.stream_id
        self._text: list[str] = []
        self._completed: ev_pb.Completed | None = None
        self._rejected: list[RouterError] = []
        self.on_completed: Callable[[Result], None] | None = None
        """Called with the whole output when the completed event arrives."""

    @property
    def stream_id(self) -> str:
        """The generation's id, once the first event arrived (or as the start chose it)."""
        return self._stream_id

    @property
    def text(self) -> str:
        """The text received so far (after an attach, since its offset)."""
        return "".join(self._text)

    @property
    def completed(self) -> ev_pb.Completed | None:
        """The completed event, once it has arrived."""
        return self._completed

    @property
    def rejected(self) -> list[RouterError]:
        """Steering requests the server could not apply (a ``resume`` when not
        paused, credits in AUTO flow), oldest first; the call went on after each."""
        return list(self._rejected)

    def __aiter__(self) -> AsyncIterator[ev_pb.StreamEvent]:
        if self._events is None:
            self._events = self._run()
        return self._events

    async def chunks(self) -> AsyncIterator[str]:
        """The text of each chunk, in order."""
        async for event in self:
            if event.HasField("chunk"):
                yield event.chunk.text

    async def result(self) -> Result:
        """Reads the remaining events; returns the whole text and the completed event."""
        async for _ in self:
            pass
        if self._completed is None:
            raise RuntimeError("the call ended without a completed event")
        return Result(self.text, self._completed)

    async def pause(self, reason: str = "") -> None:
        """Asks the server to stop producing until :meth:`resume`; a paused event marks it."""
        self._requests.put(svc_pb.GenerateRequest(pause=gen_pb.PauseGeneration(reason=reason)))

    async def resume(self) -> None:
        """Continues a paused generation at the next offset, after a resumed event."""
        self._requests.put(svc_pb.GenerateRequest(resume=gen_pb.ResumeGeneration()))

    async def cancel(self, reason: str = "") -> None:
        """Cancels the generation; ``reason`` comes back as the event's ``cancel_reason``.

        The call then ends normally (no error) with one ``completed`` event:
        finish reason CANCELLED, ``cancelled_by`` CANCELLED_BY_CALLER, this
        reason and the usage so far. That event needs no credit: in CREDIT flow
        with none left the iteration skips straight to it (its offset jumps;
        the skipped events stay on the server for replay through a
        subscription or :meth:`Client.attach`). Every subscriber of the
        generation gets the same event at once. An operator's
        :meth:`Control.cancel`, a detach TTL and a server shutdown end the
        iteration the same way, with ``cancelled_by`` saying who.
        """
        self._requests.put(svc_pb.GenerateRequest(cancel=gen_pb.CancelGeneration(reason=reason)))

    async def grant(self, credits: int) -> None:
        """Allows the server to send ``credits`` more events (CREDIT flow mode)."""
        if self._requests.put(svc_pb.GenerateRequest(grant=gen_pb.GrantCredits(credits=credits))):
            self._credits.grant(credits)

    async def aclose(self) -> None:
        """Ends the call; the server cancels the generation unless it was detached."""
        self._requests.close()
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self) -> Generation:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self) -> AsyncIterator[ev_pb.StreamEvent]:
        try:
            while True:
                try:
                    async for event in self._call_once():
                        yield event
                except grpc.aio.AioRpcError as error:
                    if self._completed is not None:
                        # The last event arrived, so the generation has ended. A request
                        # queued as the server closed the call makes grpc.aio report
                        # INTERNAL instead of the call's OK: that is not a failure.
                        return
                    failure = RouterError.from_rpc_error(error)
                    self._attempts += 1
                    if not self._stream_id or not await wait_to_reconnect(
                        self._reconnect, failure, self._attempts, attaching=self._attaching
                    ):
                        raise failure from error
                    self._reattach()
                else:
                    return
        finally:
            await self.aclose()

    async def _call_once(self) -> AsyncIterator[ev_pb.StreamEvent]:
        call = self._call = self._stub.Generate(self._requests.messages())
        async for response in call:
            if response.HasField("rejected"):
                self._rejected.append(RouterError.from_command_error(response.rejected))
                continue
            self._attaching = False
            if self._cursor.accept(response.event):
                self._attempts = 0
                self._record(response.event)
                yield response.event

    def _reattach(self) -> None:
        """A new request side that starts with ``attach``; later steering follows it."""
        self._requests.close()
        attach = gen_pb.AttachGeneration(
            stream_id=self._stream_id, from_offset=self._cursor.next, flow=self._credits.flow()
        )
        self._requests = Requests(svc_pb.GenerateRequest(attach=attach))
        self._attaching = True

    def _record(self, event: ev_pb.StreamEvent) -> None:
        self._stream_id = event.stream_id
        self._credits.spend()
        kind = event.WhichOneof("kind")
        if kind == "chunk":
            self._text.append(event.chunk.text)
        elif kind == "fallback_used" and event.fallback_used.action == _RESTART:
            self._text.clear()
        elif kind == "completed":
            self._completed = event.completed
            self._requests.close()
            if self.on_completed is not None:
                self.on_completed(Result(self.text, event.completed))
