"""Traces of generations: one span per generation, with an event per step.

``TraceObserver`` opens the span when it first hears of a generation (QUEUED,
before the producer starts), as a child of the caller's W3C trace context
(``GenerationRequest.trace_context``, read with the W3C propagator; none, or
an invalid one, starts a new trace), and gives the span's own context to the
generation as ``trace_headers``, which every HTTP backend request carries as
``traceparent``/``tracestate``: the upstream's spans join the same trace.
The span ends exactly once, when the generation reaches a finished state,
with status ERROR when it failed.

Span events, timestamped when the router recorded them: ``queued``,
``attempt.started`` (a backend stream opened for a new attempt),
``attempt.continued`` (a new backend stream for an attempt whose backend was
released while the generation waited), ``first_chunk``, ``attempt.failed``,
``fallback.used``, ``paused``, ``resumed``. With the no-op tracer (nothing to
export) the span records nothing, but the caller's context still reaches
the upstream.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from llmrouter_server.errors import FailedAttempt
from llmrouter_server.routing.items import FallbackUsed
from llmrouter_server.streams.events import Chunk, Completed, Event, Paused, Queued, Resumed
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.lifecycle import FINISHED, StreamState
from llmrouter_server.telemetry.attempts import AttemptWatch

SPAN_NAME = "llmrouter.generation"
"""The name of every generation's span."""

_PROPAGATOR = TraceContextTextMapPropagator()

Attributes = Mapping[str, AttributeValue]


def _ns(seconds: float) -> int:
    """Wall-clock seconds as span timestamps (nanoseconds since the epoch)."""
    return int(seconds * 1e9)


class _Traced:
    """The span of one live generation and what its observer has seen."""

    __slots__ = ("first_chunk", "recording", "span", "watch")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.recording = span.is_recording()
        """False for the no-op tracer's span: nothing to add to it."""
        self.watch = AttemptWatch()
        self.first_chunk = False


class TraceObserver:
    """Keeps a span per live generation (an ``Observer``)."""

    def __init__(self, tracer: Tracer) -> None:
        """Opens spans on ``tracer`` (the no-op tracer records nothing)."""
        self._tracer = tracer
        self._live: dict[Generation, _Traced] = {}

    def state_changed(self, generation: Generation) -> None:
        """Opens the span at the first state; notes attempts; ends it at the last."""
        traced = self._live.get(generation)
        if traced is None:
            if generation.state in FINISHED:
                return
            traced = self._open(generation)
        if traced.recording:
            self._attempts(generation, traced)
        if generation.state in FINISHED:
            del self._live[generation]
            if traced.recording:
                self._end(generation, traced.span)

    def event_added(self, generation: Generation, event: Event) -> None:
        """Adds the span event of a step (nothing per chunk but the first)."""
        traced = self._live.get(generation)
        if traced is None or not traced.recording:
            return
        if len(generation.transcript.segments) != traced.watch.seen:
            self._attempts(generation, traced)
        kind = event.kind
        if kind.__class__ is Chunk:
            if not traced.first_chunk:
                traced.first_chunk = True
                traced.span.add_event("first_chunk", timestamp=_ns(event.time))
            return
        _step(traced.span, event)

    def _open(self, generation: Generation) -> _Traced:
        """Starts the span and hands its context to the generation's backend requests."""
        parent = _PROPAGATOR.extract(dict(generation.request.trace_context))
        span = self._tracer.start_span(
            SPAN_NAME,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=_started(generation),
            start_time=_ns(generation.created_at),
        )
        headers: dict[str, str] = {}
        _PROPAGATOR.inject(headers, context=set_span_in_context(span))
        generation.trace_headers = tuple(headers.items())
        traced = self._live[generation] = _Traced(span)
        return traced

    def _attempts(self, generation: Generation, traced: _Traced) -> None:
        for segment, continued in traced.watch.new(generation.transcript.segments):
            traced.span.add_event(
                "attempt.continued" if continued else "attempt.started",
                {
                    "llmrouter.attempt": segment.attempt,
                    "llmrouter.target": segment.target,
                    "llmrouter.backend": segment.backend,
                    "llmrouter.model": segment.model,
                },
            )

    def _end(self, generation: Generation, span: Span) -> None:
        usage = generation.tally.usage
        span.set_attributes(
            {
                "llmrouter.state": generation.state.value,
                "llmrouter.attempts": generation.transcript.attempts,
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
            }
        )
        error = generation.error
        if generation.state is StreamState.FAILED and error is not None:
            span.set_attributes({"error.type": error.reason, "llmrouter.error": error.message})
            span.set_status(Status(StatusCode.ERROR, error.message))
        finished = generation.finished_at
        span.end(end_time=_ns(finished) if finished is not None else None)


def _step(span: Span, event: Event) -> None:
    """Adds the span event of a step other than a chunk (or the completion's attributes)."""
    kind, at = event.kind, _ns(event.time)
    if isinstance(kind, Queued):
        span.add_event("queued", {"llmrouter.queue.position": kind.position}, at)
    elif isinstance(kind, FailedAttempt):
        span.add_event("attempt.failed", _failure(kind), at)
    elif isinstance(kind, FallbackUsed):
        span.add_event("fallback.used", _fallback(kind), at)
    elif isinstance(kind, Paused):
        span.add_event("paused", {"llmrouter.pause.reason": kind.reason}, at)
    elif isinstance(kind, Resumed):
        span.add_event("resumed", timestamp=at)
    elif isinstance(kind, Completed):
        span.set_attributes(_completed(kind))


def _started(generation: Generation) -> Attributes:
    target = generation.route.targets[0]
    return {
        "llmrouter.stream_id": generation.stream_id,
        "llmrouter.route": generation.route.name,
        "llmrouter.model": target.model,
        "llmrouter.backend": target.backend.name,
        "llmrouter.flow_mode": "credit" if generation.request.flow.credit else "auto",
        "llmrouter.tenant": generation.owner.tenant,
        "gen_ai.request.model": generation.request.model or generation.route.name,
    }


def _completed(completed: Completed) -> Attributes:
    attributes: dict[str, AttributeValue] = {
        "llmrouter.finish_reason": completed.finish_reason.value,
        "gen_ai.response.finish_reasons": (completed.finish_reason.value,),
    }
    if completed.model:  # the attempt that produced the final text
        attributes["llmrouter.model"] = completed.model
        attributes["llmrouter.backend"] = completed.backend
    if completed.cancelled_by is not None:
        attributes["llmrouter.cancelled_by"] = completed.cancelled_by.value
    return attributes


def _failure(failure: FailedAttempt) -> Attributes:
    return {
        "llmrouter.attempt": failure.attempt,
        "llmrouter.target": failure.target,
        "llmrouter.backend": failure.backend,
        "llmrouter.model": failure.model,
        "error.type": failure.error_reason,
        "llmrouter.error": failure.reason,
        "llmrouter.tokens": failure.tokens,
        "llmrouter.will_retry": failure.will_retry,
        "llmrouter.retry_delay_seconds": failure.retry_delay,
    }


def _fallback(fallback: FallbackUsed) -> Attributes:
    return {
        "llmrouter.from_backend": fallback.from_backend,
        "llmrouter.from_model": fallback.from_model,
        "llmrouter.to_backend": fallback.to_backend,
        "llmrouter.to_model": fallback.to_model,
        "llmrouter.to_target": fallback.to_target,
        "llmrouter.action": fallback.action.value,
    }
