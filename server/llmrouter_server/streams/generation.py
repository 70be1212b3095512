"""One generation: its id, state, replay log, and the task that produces it.

The producer first waits for its admission ticket (its identity's limits,
``admission.py``; ``queued`` events tell its place in line), then pulls route
items (queue positions, attempt starts, deltas) one at a time and appends
events to the log. Before each pull it passes a gate (``gate.py``): it waits
while the generation is paused or a lossless consumer is past its window. A
generation that waits there longer than ``release_after`` (or
``release_contended_after`` while another generation waits for a slot of its
backend) gives its backend back and later continues on a new backend stream
with the text so far as the start of the answer (a continuation), so no text
is lost or repeated. Whether its caller reads what it is sent (``_reads``)
also orders the backend's queue: readers first (``routing/slots.py``). However
the producer stops, the ticket is finished once, with the tokens every attempt
used, refunding the unused reservation. Who the generation runs for, and how
long it outlives its caller, is ``attachment.py``; how a stop from outside
(cancel, interrupt) ends it, ``stop.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import replace

from llmrouter_server.auth.principal import Principal
from llmrouter_server.backends.base import Delta
from llmrouter_server.errors import Internal, RouterError
from llmrouter_server.routing.items import AttemptStarted, RouteItem, Tagged
from llmrouter_server.routing.route import Plan, Route
from llmrouter_server.routing.router import Router
from llmrouter_server.routing.slots import SlotUser
from llmrouter_server.routing.transcript import Transcript
from llmrouter_server.streams.accounting import Accounting
from llmrouter_server.streams.attachment import Attachment
from llmrouter_server.streams.events import Event, Paused, Queued, Resumed, Started
from llmrouter_server.streams.gate import Gate, keeps_up
from llmrouter_server.streams.lifecycle import FINISHED, StreamState, check_pause, check_resume
from llmrouter_server.streams.log import Cursor, ReplayLog
from llmrouter_server.streams.observers import Observer
from llmrouter_server.streams.output import Output
from llmrouter_server.streams.request import Flow, GenerationRequest
from llmrouter_server.streams.settings import Settings
from llmrouter_server.streams.stop import Cancel, Interrupt, Stop
from llmrouter_server.streams.ticket import Ticket
from llmrouter_server.values import CancelledBy

logger = logging.getLogger(__name__)

_IN_ATTEMPT = (AttemptStarted, Delta, Tagged)
"""Route items that come from an attempt holding its backend slot."""

OBJECT_BYTES = 10 * 1024
"""What a finished generation's objects cost beyond its events and request, for
the retention budget: tracemalloc measures about 10 KiB for a one-chunk
generation (asyncio events and the log's deques are most of it)."""


class Generation:
    """A generation, its replay log and its producer."""

    def __init__(  # noqa: PLR0913 - a generation is all of these
        self,
        stream_id: str,
        request: GenerationRequest,
        settings: Settings,
        route: Route,
        plan: Plan,
        router: Router,
        owner: Principal,
        ticket: Ticket | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.owner = owner
        self.request = request
        self.settings = settings
        self.route = route
        self.plan = plan
        self.state = StreamState.QUEUED
        self.created_at = time.time()
        self.finished_at: float | None = None
        self.transcript = Transcript()
        self.tally = Accounting(settings.max_tokens, request.options, self.transcript)
        self.log = ReplayLog(stream_id, settings.retain_bytes, self._appended)
        self.error: RouterError | None = None
        self.observers: list[Observer] = []
        """Told of every state change and event (``observers.py``)."""
        self.trace_headers: tuple[tuple[str, str], ...] = ()
        """The trace context every backend request carries (``traceparent``,
        ``tracestate``): set by the trace observer when it opens the generation's
        span, which only it knows, before the producer starts."""
        self._router = router
        self._ticket = ticket or Ticket(None, settings.max_tokens, None)
        self._request_bytes = request.retained_bytes()
        self._attachment = Attachment(self.log, settings.window, self._detach_expired)
        self._output = Output(request, route, self.tally, self.log, self._attachment.owner_lags)
        self._slots = SlotUser((target.slots for target in route.targets), self._reads)
        self._plan = replace(plan, queue=replace(plan.queue, user=self._slots))
        self._gate = Gate(
            self.log,
            settings.release_after,
            settings.release_contended_after,
            self._slots,
            self._caller,
        )
        self._state_before_pause = StreamState.QUEUED
        self._task: asyncio.Task[None] | None = None
        self._stop: Stop = Cancel()

    @property
    def retained_bytes(self) -> int:
        """What the generation keeps: retained events, the request, its objects."""
        return self.log.retained_bytes + self._request_bytes + OBJECT_BYTES

    @property
    def consumers(self) -> int:
        """Readers attached now (a detached caller's place is not one)."""
        return self.log.cursors - self._attachment.detached

    @property
    def detached(self) -> bool:
        """True while the generation runs with its caller gone."""
        return self._attachment.detached

    def open_owner(self, offset: int, flow: Flow) -> Cursor:
        """The caller's lossless cursor, from ``offset``.

        Raises:
            FailedPrecondition: Another caller owns the generation.
            OutOfRange: The offset is not available.
        """
        return self._attachment.attach(offset, flow.credits)

    def close_owner(self, cursor: Cursor) -> None:
        """The caller left: cancel, or keep running detached for the request's TTL."""
        self._attachment.leave(cursor)
        if self.state in FINISHED:
            return
        ttl = self.settings.detach_after
        if ttl is None:
            self.cancel()
            return
        self._attachment.detach(cursor.offset, ttl)

    def _detach_expired(self) -> None:
        """The detach TTL ran out with no consumer back."""
        self.cancel(CancelledBy.DETACH_TIMEOUT, "no consumer came back within the detach TTL")

    def start(self, on_done: Callable[[Generation], None] | None = None) -> None:
        """Starts producing.

        Args:
            on_done: Called once the producer has stopped.
        """
        self._task = asyncio.create_task(self._produce(), name=f"generation {self.stream_id}")
        self._task.add_done_callback(self._stopped)
        if on_done is not None:
            self._task.add_done_callback(lambda _: on_done(self))

    def _stopped(self, _: asyncio.Task[None]) -> None:
        """The producer has stopped, even one cancelled before it first ran (whose
        ``finally`` never did): the log ends and the admission is finished."""
        if self.state not in FINISHED:
            self._finish_stopped()
        self._finish_admission()

    def pause(self, reason: str = "") -> None:
        """Stops the producer before its next pull.

        Raises:
            FailedPrecondition: Finished or already paused.
        """
        check_pause(self.state, self.stream_id)
        self._state_before_pause = self.state
        self._gate.pause()
        self.log.append(Paused(reason))
        self._set_state(StreamState.PAUSED)

    def resume(self) -> None:
        """Lets a paused producer go on at the next offset.

        Raises:
            FailedPrecondition: Not paused.
        """
        check_resume(self.state, self.stream_id)
        self.log.append(Resumed())
        self._set_state(self._state_before_pause)
        self._gate.resume()

    def cancel(self, by: CancelledBy = CancelledBy.CALLER, reason: str = "") -> None:
        """Stops the generation and its backend.

        Whoever cancels, the log ends with one ``Completed`` event (CANCELLED,
        who and why), which every consumer gets at once: it needs no credit.

        Args:
            by: Who cancels.
            reason: Why, in their words.
        """
        self._halt(Cancel(by, reason))

    def interrupt(self, why: str) -> None:
        """Stops the producer, FAILED here: readers get UNAVAILABLE (``stop.Interrupt``)."""
        self._halt(Interrupt(why))

    def _halt(self, stop: Stop) -> None:
        if self.state not in FINISHED and self._task is not None:
            self._stop = stop
            self._task.cancel()

    async def wait(self) -> None:
        """Waits until the producer has stopped (however it stopped; the wait
        being cancelled does not cancel it)."""
        if self._task is not None:
            await asyncio.wait({self._task})

    def _set_state(self, state: StreamState) -> None:
        if state is not self.state:
            self.state = state
            if state in FINISHED:
                self.finished_at = time.time()
            for observer in self.observers:
                observer.state_changed(self)

    def _appended(self, event: Event) -> None:
        for observer in self.observers:
            observer.event_added(self, event)

    async def _produce(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            self._finish_stopped()
        except RouterError as error:
            self._fail(error)
        except Exception as exc:
            logger.exception(
                "generation %s failed unexpectedly",
                self.stream_id,
                extra={"stream_id": self.stream_id, "route": self.route.name,
                       "tenant": self.owner.tenant},
            )  # fmt: skip
            self._fail(Internal(f"internal error: {type(exc).__name__}"))
        finally:
            self._finish_admission()

    def _finish_admission(self) -> None:
        """Refunds what the generation did not use of its reservation (once)."""
        self._ticket.finish(self.transcript.usage().completion_tokens)

    async def _run(self) -> None:
        target = self.route.targets[0]
        self.log.append(
            Started(
                route=self.route.name,
                model=target.model,
                backend=target.backend.name,
                max_tokens=self.tally.max_tokens,
            )
        )
        async with aclosing(self._ticket.wait()) as positions:
            async for position in positions:
                self.log.append(Queued(position))
        while not await self._pull():
            await self._gate.wait()
        self._output.flush()
        self.log.append(self.tally.completed())
        self._end(StreamState.COMPLETED)

    async def _pull(self) -> bool:
        """Streams the route; True when done, False when the backend was released.

        A release closes the route's backend stream; the next call continues
        after the transcript's text, as after a failure.
        """
        request = self.request.backend_request(self.tally.max_tokens, self.trace_headers)
        route_stream = self._router.stream(
            self.route, self._plan, request, self.transcript, self.stream_id
        )
        async with aclosing(route_stream) as items:
            try:
                while True:
                    if not await self._gate.passes():
                        return False
                    try:
                        item = await anext(items)
                    except StopAsyncIteration:
                        return True
                    # In an attempt (its slot held) from its start to its failure.
                    if not isinstance(item, _IN_ATTEMPT):
                        self._slots.holding = False
                    if self._record(item):
                        self.tally.stop_sequence()
                        return True
            finally:
                self._slots.holding = False

    def _caller(self) -> Cursor | None:
        """The caller's cursor, while one is attached."""
        return self._attachment.owner

    def _reads(self) -> bool:
        """True while the caller takes what it is sent (``gate.keeps_up``)."""
        return keeps_up(self._attachment.owner)

    def _record(self, item: RouteItem) -> bool:
        """Records one route item; True when a stop sequence ends the generation."""
        if not isinstance(item, AttemptStarted):
            return self._output.record(item)
        self.tally.attempt(item)
        if self.state is StreamState.QUEUED:
            self._set_state(StreamState.RUNNING)
        self._state_before_pause = StreamState.RUNNING
        return False

    def _finish_stopped(self) -> None:
        self._output.flush(complete=False)  # what was produced stays in the log
        stop, offset = self._stop, self.log.next_offset
        if isinstance(stop, Interrupt):
            self._fail(stop.error(offset))
        else:
            self.log.append(stop.completed(self.stream_id, offset, self.tally))
            self._end(StreamState.CANCELLED)

    def _fail(self, error: RouterError) -> None:
        self._output.flush(complete=False)  # what was produced stays in the log
        self.error = error.at(self.stream_id, self.log.next_offset)
        self._end(StreamState.FAILED, self.error)

    def _end(self, state: StreamState, error: RouterError | None = None) -> None:
        """Enters the final ``state``, closes the log (abruptly unless COMPLETED) and
        stops what would outlive the producer: the output's and the detach timer."""
        self._set_state(state)
        self.log.close(error, abrupt=state is not StreamState.COMPLETED)
        self._output.close()
        self._attachment.close()
