"""Translates domain events and routes into response messages."""

from __future__ import annotations

from google.protobuf import duration_pb2
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.api.attempts import attempt_failed
from llmrouter_server.api.status import details, status_code
from llmrouter_server.errors import FailedAttempt, RouterError
from llmrouter_server.routing.breaker import CircuitState
from llmrouter_server.routing.items import FallbackUsed
from llmrouter_server.routing.route import Route
from llmrouter_server.streams import events
from llmrouter_server.streams.lifecycle import StreamState
from llmrouter_server.streams.status import StreamStatus
from llmrouter_server.values import CancelledBy, FinishReason, MidStreamAction, RoutePolicy, Usage

_FINISH = {
    FinishReason.STOP: ev_pb.FINISH_REASON_STOP,
    FinishReason.LENGTH: ev_pb.FINISH_REASON_LENGTH,
    FinishReason.STOP_SEQUENCE: ev_pb.FINISH_REASON_STOP_SEQUENCE,
    FinishReason.CANCELLED: ev_pb.FINISH_REASON_CANCELLED,
    FinishReason.CONTENT_FILTER: ev_pb.FINISH_REASON_CONTENT_FILTER,
}

_STATES = {
    StreamState.QUEUED: ops_pb.STREAM_STATE_QUEUED,
    StreamState.RUNNING: ops_pb.STREAM_STATE_RUNNING,
    StreamState.PAUSED: ops_pb.STREAM_STATE_PAUSED,
    StreamState.COMPLETED: ops_pb.STREAM_STATE_COMPLETED,
    StreamState.FAILED: ops_pb.STREAM_STATE_FAILED,
    StreamState.CANCELLED: ops_pb.STREAM_STATE_CANCELLED,
}
STATES_BY_VALUE = {value: state for state, value in _STATES.items()}
"""Contract state values to domain states, for request filters."""

_POLICIES = {
    RoutePolicy.FALLBACK: gen_pb.ROUTE_POLICY_FALLBACK,
    RoutePolicy.RACE: gen_pb.ROUTE_POLICY_RACE,
    RoutePolicy.WEIGHTED: gen_pb.ROUTE_POLICY_WEIGHTED,
    RoutePolicy.MERGE: gen_pb.ROUTE_POLICY_MERGE,
}
POLICIES_BY_VALUE = {value: policy for policy, value in _POLICIES.items()}
"""Contract policy values to domain policies, for request overrides."""

_ACTIONS = {
    MidStreamAction.CONTINUE: gen_pb.MID_STREAM_ACTION_CONTINUE,
    MidStreamAction.RESTART: gen_pb.MID_STREAM_ACTION_RESTART,
    MidStreamAction.FAIL: gen_pb.MID_STREAM_ACTION_FAIL,
}

_CANCELLED_BY: dict[CancelledBy | None, ev_pb.CancelledBy] = {
    None: ev_pb.CANCELLED_BY_UNSPECIFIED,
    CancelledBy.CALLER: ev_pb.CANCELLED_BY_CALLER,
    CancelledBy.OPERATOR: ev_pb.CANCELLED_BY_OPERATOR,
    CancelledBy.DETACH_TIMEOUT: ev_pb.CANCELLED_BY_DETACH_TIMEOUT,
    CancelledBy.SHUTDOWN: ev_pb.CANCELLED_BY_SHUTDOWN,
}

_CIRCUITS = {
    CircuitState.CLOSED: ops_pb.CIRCUIT_STATE_CLOSED,
    CircuitState.OPEN: ops_pb.CIRCUIT_STATE_OPEN,
    CircuitState.HALF_OPEN: ops_pb.CIRCUIT_STATE_HALF_OPEN,
}

_KINDS = {
    "embedded": ops_pb.BACKEND_KIND_EMBEDDED,
    "openai": ops_pb.BACKEND_KIND_OPENAI,
    "anthropic": ops_pb.BACKEND_KIND_ANTHROPIC,
}


def generate_response(event: events.Event) -> svc_pb.GenerateResponse:
    """The Generate response carrying one event (filled in place: no copies)."""
    response = svc_pb.GenerateResponse()
    fill_event(response.event, event)
    return response


def stream_event(event: events.Event) -> ev_pb.StreamEvent:
    """The contract form of one event."""
    message = ev_pb.StreamEvent()
    fill_event(message, event)
    return message


def fill_event(message: ev_pb.StreamEvent, event: events.Event) -> None:
    """Writes ``event`` into an empty ``message`` (chunks, nearly every event, first)."""
    message.stream_id = event.stream_id
    message.offset = event.offset
    seconds = int(event.time)
    message.time.seconds = seconds
    message.time.nanos = int((event.time - seconds) * 1e9)
    kind = event.kind
    if isinstance(kind, events.Chunk):
        _fill_chunk(message.chunk, kind)
    elif isinstance(kind, events.Started):
        message.started.CopyFrom(_started(kind))
    elif isinstance(kind, events.Queued):
        message.queued.position = kind.position
    elif isinstance(kind, events.Completed):
        message.completed.CopyFrom(_completed(kind))
    elif isinstance(kind, events.JsonSnapshot):
        message.json.json = kind.json
        message.json.complete = kind.complete
    elif isinstance(kind, FailedAttempt):
        message.attempt_failed.CopyFrom(attempt_failed(kind))
    elif isinstance(kind, FallbackUsed):
        message.fallback_used.CopyFrom(_fallback_used(kind))
    elif isinstance(kind, events.Paused):
        message.paused.reason = kind.reason
    elif isinstance(kind, events.Resumed):
        message.resumed.SetInParent()
    else:
        message.gap.from_offset = kind.from_offset
        message.gap.to_offset = kind.to_offset


def stream_status(status: StreamStatus) -> ops_pb.StreamStatus:
    """The contract form of a generation's status."""
    message = ops_pb.StreamStatus(
        stream_id=status.stream_id,
        state=_STATES[status.state],
        route=status.route,
        model=status.model,
        backend=status.backend,
        next_offset=status.next_offset,
        first_retained_offset=status.first_retained_offset,
        usage=_usage(status.usage),
        finish_reason=_FINISH.get(status.finish_reason, ev_pb.FINISH_REASON_UNSPECIFIED)
        if status.finish_reason
        else ev_pb.FINISH_REASON_UNSPECIFIED,
        consumers=status.consumers,
        labels=dict(status.labels),
        tenant=status.tenant,
    )
    message.created_at.FromNanoseconds(int(status.created_at * 1e9))
    if status.finished_at is not None:
        message.finished_at.FromNanoseconds(int(status.finished_at * 1e9))
    if status.error is not None:
        message.error.CopyFrom(command_error(status.error))
    return message


def stream_status_state(state: StreamState) -> ops_pb.StreamState:
    """The contract value of a state."""
    return _STATES[state]


def command_error(error: RouterError) -> ops_pb.CommandError:
    """An in-band error: the status code it maps to, its message and its details."""
    return ops_pb.CommandError(
        code=status_code(error).value[0], message=error.message, details=details(error)
    )


def list_models_response(routes: list[Route], default_route: str) -> svc_pb.ListModelsResponse:
    """Every route with its targets and their load."""
    return svc_pb.ListModelsResponse(
        routes=[
            ops_pb.Route(
                name=route.name,
                policy=_POLICIES[route.plan.policy],
                targets=[
                    ops_pb.RouteTarget(
                        backend=target.backend.name,
                        kind=_KINDS.get(target.backend.kind, ops_pb.BACKEND_KIND_UNSPECIFIED),
                        model=target.model,
                        circuit=_CIRCUITS[target.health.state],
                        in_flight=target.slots.in_use,
                        queued=target.slots.waiting,
                        max_concurrency=target.slots.limit,
                        weight=target.weight,
                    )
                    for target in route.targets
                ],
                is_default=route.name == default_route,
            )
            for route in routes
        ]
    )


def _fill_chunk(message: ev_pb.Chunk, chunk: events.Chunk) -> None:
    message.SetInParent()  # set even when every field keeps its default
    message.text = chunk.text
    message.token_count = chunk.token_count
    if chunk.token_ids:
        message.token_ids.extend(chunk.token_ids)
    if chunk.progress is not None:
        message.progress.CopyFrom(_progress(chunk.progress))
    if chunk.source is not None:
        message.metadata.model = chunk.source.model
        message.metadata.backend = chunk.source.backend
        message.metadata.attempt = chunk.source.attempt
        message.metadata.target = chunk.source.target
    if chunk.timing is not None:
        timing = chunk.timing
        message.metadata.produced_at.FromNanoseconds(round(timing.produced_at * 1e9))
        if timing.since_previous is not None:
            message.metadata.since_previous.CopyFrom(_duration(timing.since_previous))


def _progress(progress: events.Progress) -> ev_pb.Progress:
    message = ev_pb.Progress(
        completion_tokens=progress.completion_tokens,
        max_tokens=progress.max_tokens,
        tokens_per_second=progress.tokens_per_second,
        elapsed=_duration(progress.elapsed),
        fraction=progress.fraction,
    )
    if progress.eta is not None:
        message.eta.CopyFrom(_duration(progress.eta))
    if progress.time_to_first_token is not None:
        message.time_to_first_token.CopyFrom(_duration(progress.time_to_first_token))
    return message


def _fallback_used(used: FallbackUsed) -> ev_pb.FallbackUsed:
    return ev_pb.FallbackUsed(
        from_model=used.from_model,
        to_model=used.to_model,
        backend=used.to_backend,
        action=_ACTIONS[used.action],
        from_backend=used.from_backend,
        to_target=used.to_target,
    )


def _started(started: events.Started) -> ev_pb.Started:
    return ev_pb.Started(
        route=started.route,
        model=started.model,
        backend=started.backend,
        prompt_tokens=started.prompt_tokens,
        max_tokens=started.max_tokens,
    )


def _completed(completed: events.Completed) -> ev_pb.Completed:
    usage = completed.usage
    timings = completed.timings
    return ev_pb.Completed(
        finish_reason=_FINISH[completed.finish_reason],
        usage=_usage(usage),
        timings=ev_pb.Timings(
            queue_time=_duration(timings.queue_time),
            time_to_first_token=_duration(timings.time_to_first_token),
            total_time=_duration(timings.total_time),
            tokens_per_second=timings.tokens_per_second,
        ),
        model=completed.model,
        backend=completed.backend,
        attempts=completed.attempts,
        attempt_usage=[
            ev_pb.AttemptUsage(
                attempt=item.attempt,
                target=item.target,
                model=item.model,
                backend=item.backend,
                usage=_usage(item.usage),
            )
            for item in completed.attempt_usage
        ],
        cancelled_by=_CANCELLED_BY[completed.cancelled_by],
        cancel_reason=completed.cancel_reason,
    )


def _usage(usage: Usage) -> ev_pb.Usage:
    return ev_pb.Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration
