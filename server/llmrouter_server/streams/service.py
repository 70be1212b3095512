"""The domain entry point the gRPC layer calls.

Starts generations and hands out the cursors that read them; pauses,
resumes and cancels generations by id; answers status lookups. Every call
takes the caller's principal: a generation belongs to the principal that
started it, and only its tenant (or an admin) can find it. A start passes
the principal's admission limits (``admission.py``) and carries its share of
the backends' queues into routing; a BLOCK subscriber may hold the producer
back for ``limits.max_hold_seconds`` at most. At shutdown the generations
still running after the grace period are interrupted: their readers get
UNAVAILABLE with the offset to re-attach from.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from llmrouter_server.auth.principal import Principal
from llmrouter_server.config import LimitsConfig, StreamsConfig
from llmrouter_server.errors import InvalidArgument, PermissionDenied, Unavailable
from llmrouter_server.routing.route import Plan, Route
from llmrouter_server.routing.router import Router
from llmrouter_server.streams.admission import Admission, Ticket, queue_claim
from llmrouter_server.streams.events import Event
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.lifecycle import FINISHED, StreamState
from llmrouter_server.streams.log import Cursor, SlowPolicy, Window
from llmrouter_server.streams.observers import Observer
from llmrouter_server.streams.registry import StreamRegistry, Watcher
from llmrouter_server.streams.request import Flow, GenerationRequest, validate
from llmrouter_server.streams.settings import Settings
from llmrouter_server.streams.status import StreamStatus, snapshot
from llmrouter_server.values import CancelledBy, RoutePolicy

SHUTDOWN = "the server shut down"
"""Why a generation still running after the grace period was interrupted."""


@dataclass(frozen=True, slots=True)
class Drained:
    """How the generations running when shutdown began ended."""

    finished: int
    """Ended on their own within the grace period (completed, failed or cancelled)."""
    interrupted: int
    """Still running after it: ended with UNAVAILABLE and their resume offset."""


class Generations:
    """Starts, tracks, steers and stops generations."""

    def __init__(
        self,
        router: Router,
        limits: LimitsConfig,
        streams: StreamsConfig,
        observers: Sequence[Observer] = (),
    ) -> None:
        """The domain over ``router``; ``observers`` watch every generation (metrics,
        traces, stats, logs), after the registry."""
        self.router = router
        self.observers = tuple(observers)
        self.limits = limits
        self.config = streams
        self.registry = StreamRegistry(streams.retain_seconds, streams.retain_total_bytes)
        self.window = Window(
            high_events=streams.window_events,
            low_events=streams.window_events // 2,
            high_bytes=streams.window_bytes,
            low_bytes=streams.window_bytes // 2,
        )
        self.admission = Admission()
        self._accepting = True

    def start(self, principal: Principal, request: GenerationRequest) -> tuple[Generation, Cursor]:
        """Validates, routes and starts a generation; returns it and the caller's cursor.

        Raises:
            InvalidArgument: A field is wrong, or ``max_tokens`` exceeds what
                the principal's output-token bucket holds.
            NotFound: The model is unknown.
            AlreadyExists: The client-chosen stream id is taken.
            ResourceExhausted: Over one of the principal's limits (``on_limit:
                reject``), or its admission line is full.
            Unavailable: The server is shutting down.
        """
        self._check_accepting()
        max_tokens = validate(request, self.limits)
        detach_after = self._detach_after(request)
        route = self.router.resolve(request.model, json_output=request.json_output)
        plan = self.router.plan(route, request.routing, request.deadline, queue_claim(principal))
        ticket = self._admit(principal, request, route, plan, max_tokens)
        stream_id = request.stream_id or f"gen-{secrets.token_hex(16)}"
        settings = Settings(
            max_tokens=max_tokens,
            window=self.window,
            retain_bytes=self.config.retain_bytes_per_stream,
            release_after=self.config.release_after_seconds,
            release_contended_after=self.config.release_contended_after_seconds,
            detach_after=detach_after,
        )
        generation = Generation(
            stream_id, request, settings, route, plan, self.router, principal, ticket
        )
        try:
            self.registry.add(generation)
        except BaseException:
            ticket.finish(0)
            raise
        for observer in self.observers:
            generation.observers.append(observer)
            observer.state_changed(generation)
        cursor = generation.open_owner(0, request.flow)
        generation.start()
        return generation, cursor

    def attach(
        self, principal: Principal, stream_id: str, offset: int, flow: Flow
    ) -> tuple[Generation, Cursor]:
        """Re-attaches a caller to a detached (or finished) generation from ``offset``.

        Raises:
            NotFound: Unknown stream.
            FailedPrecondition: Another caller is attached.
            OutOfRange: The offset is not available.
        """
        self._check_accepting()
        generation = self.registry.get(principal, stream_id)
        return generation, generation.open_owner(offset, flow)

    def subscribe(
        self, principal: Principal, stream_id: str, offset: int, policy: SlowPolicy, flow: Flow
    ) -> tuple[Generation, Cursor]:
        """A subscriber's cursor on a running or retained generation.

        Raises:
            NotFound: Unknown stream.
            OutOfRange: The offset is not available.
            PermissionDenied: BLOCK asked for by someone other than the owner or an admin.
        """
        generation = self.registry.get(principal, stream_id)
        if policy is SlowPolicy.BLOCK and not _owns(principal, generation):
            raise PermissionDenied(
                "AddSubscription.slow_policy: BLOCK holds the generation back; only the "
                "identity that started it (or an admin) may use it: use SKIP or DISCONNECT",
                field="AddSubscription.slow_policy",
                stream_id=stream_id,
            )
        cursor = generation.log.cursor(
            offset, self.window, policy, flow.credits, self.limits.max_hold_seconds
        )
        return generation, cursor

    def pause(self, principal: Principal, stream_id: str, reason: str) -> StreamStatus:
        """Pauses a generation by id."""
        generation = self.registry.get(principal, stream_id)
        generation.pause(reason)
        return snapshot(generation)

    def resume(self, principal: Principal, stream_id: str) -> StreamStatus:
        """Resumes a generation by id."""
        generation = self.registry.get(principal, stream_id)
        generation.resume()
        return snapshot(generation)

    async def cancel(self, principal: Principal, stream_id: str, reason: str) -> StreamStatus:
        """Cancels a generation by id; its log ends with ``Completed`` (by OPERATOR)."""
        generation = self.registry.get(principal, stream_id)
        generation.cancel(CancelledBy.OPERATOR, reason)
        await generation.wait()
        return snapshot(generation)

    def status(self, principal: Principal, stream_id: str) -> StreamStatus:
        """The status of a generation by id."""
        return snapshot(self.registry.get(principal, stream_id))

    def describe(
        self, principal: Principal, stream_id: str, recent: int
    ) -> tuple[StreamStatus, list[Event]]:
        """The status of a generation by id and its last ``recent`` retained events."""
        generation = self.registry.get(principal, stream_id)
        return snapshot(generation), generation.log.recent(recent)

    def statuses(
        self, principal: Principal, states: Iterable[StreamState] = ()
    ) -> list[StreamStatus]:
        """Visible statuses, newest first, optionally filtered by state."""
        return self.registry.statuses(principal, states)

    def watch(self, principal: Principal) -> Watcher:
        """A watcher of the state changes the principal may see."""
        return self.registry.watch(principal)

    @property
    def accepting(self) -> bool:
        """False once shutdown began: new generations are refused."""
        return self._accepting

    def stop_accepting(self) -> None:
        """Refuses new generations from now on."""
        self._accepting = False

    async def shut_down(self, grace: float) -> Drained:
        """Refuses new generations; those running (detached ones too) get ``grace``
        seconds to finish, then the rest are interrupted.

        An interrupted generation ends FAILED: its readers (the caller, the
        subscribers) get, after every event it produced, UNAVAILABLE with its
        stream id and the offset to re-attach from, elsewhere.
        """
        self.stop_accepting()
        running = self.registry.running()
        waiters = [asyncio.ensure_future(g.wait()) for g in running]
        if waiters:
            _, pending = await asyncio.wait(waiters, timeout=grace)
            for waiter in pending:
                waiter.cancel()  # only the wait: the generation goes on
        left = [g for g in running if g.state not in FINISHED]
        for generation in left:
            generation.interrupt(SHUTDOWN)
        await asyncio.gather(*(generation.wait() for generation in left))
        return Drained(finished=len(running) - len(left), interrupted=len(left))

    async def close(self) -> None:
        """Interrupts what still runs (``shut_down`` with no grace); closes the backends."""
        await self.shut_down(0)
        await self.router.close()

    def _admit(
        self,
        principal: Principal,
        request: GenerationRequest,
        route: Route,
        plan: Plan,
        max_tokens: int,
    ) -> Ticket:
        """The principal's admission of a generation reserving ``max_tokens`` per lane."""
        lanes = len(route.targets) if plan.policy is RoutePolicy.MERGE else 1
        return self.admission.admit(principal, max_tokens * lanes, request.deadline, lanes)

    def _check_accepting(self) -> None:
        if not self._accepting:
            raise Unavailable("the server is shutting down; retry on another replica")

    def _detach_after(self, request: GenerationRequest) -> float | None:
        if not request.detach:
            return None
        ttl = request.detach_seconds
        if ttl is None:
            return self.config.default_detach_seconds
        if not 0 < ttl <= self.config.max_detach_seconds:
            raise InvalidArgument(
                "start.on_disconnect.detach_ttl",
                f"must be in (0, {self.config.max_detach_seconds:g}] seconds",
            )
        return ttl


def _owns(principal: Principal, generation: Generation) -> bool:
    """True when the principal started the generation, or is an admin."""
    return principal.admin or principal.identity == generation.owner.identity
