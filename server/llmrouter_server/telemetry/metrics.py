"""Metrics of generations: an observer recording into the server's instruments.

``MetricsObserver`` keeps a small record per live generation (its label sets,
the time of its last chunk, the attempts seen) and forgets it when the
generation finishes. A chunk, the common event, costs one clock reading, an
integer addition and one histogram sample (the SDK's ``record``, about 15 us
on two slow cores, is most of it): output tokens are summed in a plain
``Tally`` per label set, which an observable counter reads at collection
time, instead of one SDK measurement per chunk. Label sets are made once per
route and backend and shared by every generation. The observable gauges
(subscribers of live generations, every target's circuit state) are also
read at collection time. Collection may run on an exporter's thread (the
``/metrics`` server, the OTLP reader): the callbacks only read, from copies.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from opentelemetry.metrics import CallbackOptions, Meter, Observation, UpDownCounter

from llmrouter_server.errors import FailedAttempt
from llmrouter_server.routing.breaker import CircuitState
from llmrouter_server.routing.items import FallbackUsed
from llmrouter_server.routing.router import Router
from llmrouter_server.streams.events import Chunk, Completed, Event, Paused
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.lifecycle import FINISHED, StreamState
from llmrouter_server.telemetry.attempts import AttemptWatch
from llmrouter_server.telemetry.instruments import Instruments

Labels = Mapping[str, str]
"""One label set (attributes), shared and never changed."""

MAX_LABEL_SETS = 4096
"""Label sets kept for reuse; past this the cache starts over (a client naming
``backend/model`` routes at will must not grow it without bound)."""

OVERFLOW: Labels = {"route": "_overflow", "backend": "_overflow"}
"""Where tokens of label sets beyond ``MAX_LABEL_SETS`` are counted."""


class Tally:
    """The output tokens of one label set since the server started."""

    __slots__ = ("labels", "tokens")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.tokens = 0


class _Measured:
    """What the observer keeps of one live generation."""

    __slots__ = (
        "by_route", "cancelled_by", "current", "first_chunk", "labels", "last_chunk",
        "ran", "route", "started", "tally", "watch",
    )  # fmt: skip

    def __init__(
        self, route: str, labels: Labels, tally: Tally, by_route: Labels, started: float
    ) -> None:
        self.route = route
        self.labels = labels
        """Route and the current attempt's backend."""
        self.tally = tally
        """Where its tokens count: ``labels``' tally."""
        self.by_route = by_route
        """Route only."""
        self.started = started
        """``tally.started_at``: the generation's start on the monotonic clock."""
        self.last_chunk: float | None = None
        """When the previous chunk came; None before the first and after a pause."""
        self.first_chunk = False
        """True once the first chunk was timed."""
        self.ran = False
        """True once the first attempt began (the queue wait is recorded)."""
        self.current: UpDownCounter | None = None
        """The gauge the generation counts in now (queued or active)."""
        self.cancelled_by = ""
        """CANCELLED only: who cancelled, from the ``Completed`` event."""
        self.watch = AttemptWatch()


class MetricsObserver:
    """Records every generation's life into the instruments (an ``Observer``)."""

    def __init__(self, meter: Meter, router: Router) -> None:
        """Makes the instruments on ``meter``; the circuit gauge reads ``router``'s targets."""
        self._instruments = Instruments.create(meter)
        self._router = router
        self._live: dict[Generation, _Measured] = {}
        self._labels: dict[tuple[tuple[str, str], ...], Labels] = {}
        self._tallies: dict[tuple[str, str], Tally] = {}
        self._gauges: dict[StreamState, UpDownCounter] = {
            StreamState.QUEUED: self._instruments.queued,
            StreamState.RUNNING: self._instruments.active,
            StreamState.PAUSED: self._instruments.active,
        }
        meter.create_observable_counter(
            "llmrouter.output_tokens",
            callbacks=[self._tokens],
            description="Tokens of the chunks generations emitted {route, backend}.",
        )
        meter.create_observable_gauge(
            "llmrouter.subscribers",
            callbacks=[self._subscribers],
            description="Readers (the caller, subscribers) of running generations {route}.",
        )
        meter.create_observable_gauge(
            "llmrouter.circuit.state",
            callbacks=[self._circuits],
            description="1 for the state each target's circuit is in, else 0 {target, state}.",
        )

    def state_changed(self, generation: Generation) -> None:
        """Counts the start, moves the generation between gauges, counts the outcome."""
        measured = self._live.get(generation)
        state = generation.state
        if measured is None:
            if state in FINISHED:
                return
            measured = self._open(generation)
        self._attempts(generation, measured)
        gauge = self._gauges.get(state)
        if gauge is not measured.current:
            if measured.current is not None:
                measured.current.add(-1, measured.by_route)
            if gauge is not None:
                gauge.add(1, measured.by_route)
            measured.current = gauge
        if state is StreamState.RUNNING and not measured.ran:
            measured.ran = True
            wait = time.monotonic() - measured.started
            self._instruments.queue_wait.record(wait, measured.by_route)
        if state in FINISHED:
            self._finish(generation, measured)

    def event_added(self, generation: Generation, event: Event) -> None:
        """Counts tokens and chunk latencies; attempts, failures and fallbacks."""
        measured = self._live.get(generation)
        if measured is None:
            return
        if len(generation.transcript.segments) != measured.watch.seen:
            self._attempts(generation, measured)
        kind = event.kind
        if kind.__class__ is Chunk:
            self._chunk(measured, kind)
        elif isinstance(kind, FailedAttempt):
            labels = self._label_set(
                route=measured.route, backend=kind.backend, reason=kind.error_reason
            )
            self._instruments.attempt_failures.add(1, labels)
        elif isinstance(kind, FallbackUsed):
            labels = self._label_set(
                route=measured.route,
                backend=kind.from_backend,
                to_backend=kind.to_backend,
                action=kind.action.value,
            )
            self._instruments.fallbacks.add(1, labels)
        elif isinstance(kind, Paused):
            measured.last_chunk = None
        elif isinstance(kind, Completed) and kind.cancelled_by is not None:
            measured.cancelled_by = kind.cancelled_by.value

    def _chunk(self, measured: _Measured, chunk: Chunk) -> None:
        now = time.monotonic()
        labels = measured.labels
        tokens = chunk.token_count
        measured.tally.tokens += tokens
        last = measured.last_chunk
        if last is not None:
            gap = now - last
            self._instruments.inter_token.record(gap / tokens if tokens > 1 else gap, labels)
        elif not measured.first_chunk:
            measured.first_chunk = True
            self._instruments.time_to_first_token.record(now - measured.started, labels)
        measured.last_chunk = now

    def _open(self, generation: Generation) -> _Measured:
        route = generation.route.name
        first = generation.route.targets[0].backend.name
        measured = _Measured(
            route,
            self._label_set(route=route, backend=first),
            self._tally(route, first),
            self._label_set(route=route),
            generation.tally.started_at,
        )
        self._live[generation] = measured
        self._instruments.started.add(1, measured.labels)
        return measured

    def _attempts(self, generation: Generation, measured: _Measured) -> None:
        for segment, continued in measured.watch.new(generation.transcript.segments):
            measured.labels = self._label_set(route=measured.route, backend=segment.backend)
            measured.tally = self._tally(measured.route, segment.backend)
            if not continued:
                self._instruments.attempts.add(1, measured.labels)

    def _finish(self, generation: Generation, measured: _Measured) -> None:
        del self._live[generation]
        route, backend = measured.route, measured.labels["backend"]
        state = generation.state
        if state is StreamState.COMPLETED:
            self._instruments.completed.add(1, measured.labels)
        elif state is StreamState.FAILED:
            reason = generation.error.reason if generation.error else "INTERNAL"
            labels = self._label_set(route=route, backend=backend, reason=reason)
            self._instruments.failed.add(1, labels)
        else:
            by = measured.cancelled_by
            labels = self._label_set(route=route, backend=backend, cancelled_by=by)
            self._instruments.cancelled.add(1, labels)

    def _label_set(self, **labels: str) -> Labels:
        """The shared label set equal to ``labels`` (made once, then reused)."""
        key = tuple(labels.items())
        shared = self._labels.get(key)
        if shared is None:
            if len(self._labels) >= MAX_LABEL_SETS:
                self._labels.clear()
            shared = self._labels[key] = labels
        return shared

    def _tally(self, route: str, backend: str) -> Tally:
        """The token tally of ``route`` and ``backend`` (never dropped: it is cumulative)."""
        tally = self._tallies.get((route, backend))
        if tally is None:
            if len(self._tallies) >= MAX_LABEL_SETS:
                return self._tallies.setdefault(("", ""), Tally(OVERFLOW))
            labels = self._label_set(route=route, backend=backend)
            tally = self._tallies[(route, backend)] = Tally(labels)
        return tally

    def _tokens(self, _: CallbackOptions) -> Iterable[Observation]:
        tallies = list(self._tallies.values())
        return [Observation(tally.tokens, tally.labels) for tally in tallies if tally.tokens]

    def _subscribers(self, _: CallbackOptions) -> Iterable[Observation]:
        readers = dict.fromkeys((route.name for route in self._router.routes()), 0)
        for generation, measured in list(self._live.items()):
            readers[measured.route] = readers.get(measured.route, 0) + generation.consumers
        return [Observation(count, {"route": route}) for route, count in readers.items()]

    def _circuits(self, _: CallbackOptions) -> Iterable[Observation]:
        observations = []
        for health in self._router.health.all():
            current = health.state
            for state in CircuitState:
                labels = {"target": health.name, "state": state.value}
                observations.append(Observation(int(state is current), labels))
        return observations
