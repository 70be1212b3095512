"""One generation: its id, state, offsets, and the task that produces it.

The producer pulls route items (queue positions, attempt starts, deltas),
turns them into events with consecutive offsets and puts them into a bounded
hand-off; when the consumer stops taking events the hand-off fills, the
producer waits, and the backend is no longer pulled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from enum import StrEnum

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.errors import Cancelled, Internal, RouterError
from llmrouter_server.routing.router import AttemptStarted, Route, RouteItem, Router, Waiting
from llmrouter_server.streams.accounting import Accounting
from llmrouter_server.streams.events import Event, EventKind, Queued, Started
from llmrouter_server.streams.handoff import Handoff
from llmrouter_server.streams.request import GenerationRequest
from llmrouter_server.streams.stops import StopMatcher

logger = logging.getLogger(__name__)


class StreamState(StrEnum):
    """The lifecycle of a generation."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({StreamState.COMPLETED, StreamState.FAILED, StreamState.CANCELLED})
"""States a generation never leaves."""


@dataclass(frozen=True, slots=True)
class Budget:
    """How much one generation may produce and buffer."""

    max_tokens: int
    """The effective token limit."""
    buffer_events: int
    """Events held between producer and consumer before the producer waits."""


class Generation:
    """A running generation and its event stream (one consumer)."""

    def __init__(
        self,
        stream_id: str,
        request: GenerationRequest,
        budget: Budget,
        route: Route,
        router: Router,
    ) -> None:
        self.stream_id = stream_id
        self.request = request
        self.route = route
        self.state = StreamState.QUEUED
        self.next_offset = 0
        self.created_at = time.time()
        self.tally = Accounting(budget.max_tokens, request.options)
        self.error: RouterError | None = None
        self._router = router
        self._handoff = Handoff(budget.buffer_events)
        self._stops = StopMatcher(request.stop)
        self._task: asyncio.Task[None] | None = None
        self._cancel_error: RouterError | None = None

    def start(self, on_done: Callable[[Generation], None] | None = None) -> None:
        """Starts producing; events become available through ``events``.

        Args:
            on_done: Called once the producer has stopped.
        """
        self._task = asyncio.create_task(self._produce(), name=f"generation {self.stream_id}")
        if on_done is not None:
            self._task.add_done_callback(lambda _: on_done(self))

    async def events(self) -> AsyncIterator[Event]:
        """Yields events in offset order until the last one.

        Raises:
            RouterError: The error that ended the generation.
        """
        while (event := await self._handoff.get()) is not None:
            yield event

    def cancel(self, error: RouterError | None = None) -> None:
        """Stops the generation and its backend.

        Args:
            error: None when the caller itself cancelled: the stream then ends
                with a CANCELLED completion event. Otherwise the stream ends
                with this error (for example ``Cancelled`` from an operator).
        """
        if self.state in FINISHED or self._task is None:
            return
        self._cancel_error = error
        self._task.cancel()

    async def wait(self) -> None:
        """Waits until the producer has stopped."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _produce(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            self._finish_cancelled()
        except RouterError as error:
            self._fail(error)
        except Exception as exc:
            logger.exception("generation %s failed unexpectedly", self.stream_id)
            self._fail(Internal(f"internal error: {type(exc).__name__}"))

    async def _run(self) -> None:
        target = self.route.targets[0]
        await self._emit(
            Started(
                route=self.route.name,
                model=target.model,
                backend=target.backend.name,
                max_tokens=self.tally.max_tokens,
            )
        )
        async with aclosing(self._router.stream(self.route, self._backend_request())) as items:
            async for item in items:
                await self._on_item(item)
                if self._stops.stopped:
                    self.tally.stop_sequence()
                    break
        rest = self.tally.chunk(Delta(text=self._stops.flush()))
        if rest is not None:
            await self._emit(rest)
        self.state = StreamState.COMPLETED
        self._handoff.close(final=self._record(self.tally.completed()))

    async def _on_item(self, item: RouteItem) -> None:
        if isinstance(item, Waiting):
            await self._emit(Queued(item.position))
        elif isinstance(item, AttemptStarted):
            self.tally.attempt(item)
            self.state = StreamState.RUNNING
        else:
            text = self._stops.feed(item.text)
            if item.finish_reason is not None:
                text += self._stops.flush()
            chunk = self.tally.chunk(replace(item, text=text))
            if chunk is not None:
                await self._emit(chunk)

    def _backend_request(self) -> BackendRequest:
        request = self.request
        return BackendRequest(
            model=self.route.targets[0].model,
            messages=request.chat(),
            max_tokens=self.tally.max_tokens,
            sampling=request.sampling,
            stop=request.stop,
            json_output=request.json_output,
            json_schema=request.json_schema,
            want_token_ids=request.options.include_token_ids,
        )

    async def _emit(self, kind: EventKind) -> None:
        await self._handoff.put(self._record(kind))

    def _record(self, kind: EventKind) -> Event:
        event = Event(self.stream_id, self.next_offset, time.time(), kind)
        self.next_offset += 1
        return event

    def _finish_cancelled(self) -> None:
        error = self._cancel_error
        if error is None:
            self.state = StreamState.CANCELLED
            self._handoff.close(final=self._record(self.tally.completed(cancelled=True)))
            return
        self._fail(error, state=StreamState.CANCELLED if isinstance(error, Cancelled) else None)

    def _fail(self, error: RouterError, state: StreamState | None = None) -> None:
        self.state = state or StreamState.FAILED
        self.error = error.at(self.stream_id, self.next_offset)
        self._handoff.close(error=self.error)
