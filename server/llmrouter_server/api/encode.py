"""Translates domain events and routes into response messages."""

from __future__ import annotations

from google.protobuf import duration_pb2
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.routing.router import Route
from llmrouter_server.streams import events

_FINISH = {
    events.FinishReason.STOP: ev_pb.FINISH_REASON_STOP,
    events.FinishReason.LENGTH: ev_pb.FINISH_REASON_LENGTH,
    events.FinishReason.STOP_SEQUENCE: ev_pb.FINISH_REASON_STOP_SEQUENCE,
    events.FinishReason.CANCELLED: ev_pb.FINISH_REASON_CANCELLED,
    events.FinishReason.CONTENT_FILTER: ev_pb.FINISH_REASON_CONTENT_FILTER,
}

_KINDS = {
    "embedded": ops_pb.BACKEND_KIND_EMBEDDED,
    "openai": ops_pb.BACKEND_KIND_OPENAI,
    "anthropic": ops_pb.BACKEND_KIND_ANTHROPIC,
}


def generate_response(event: events.Event) -> svc_pb.GenerateResponse:
    """The Generate response carrying one event."""
    return svc_pb.GenerateResponse(event=stream_event(event))


def stream_event(event: events.Event) -> ev_pb.StreamEvent:
    """The contract form of one event."""
    message = ev_pb.StreamEvent(stream_id=event.stream_id, offset=event.offset)
    message.time.FromNanoseconds(int(event.time * 1e9))
    kind = event.kind
    if isinstance(kind, events.Chunk):
        message.chunk.CopyFrom(_chunk(kind))
    elif isinstance(kind, events.Started):
        message.started.CopyFrom(_started(kind))
    elif isinstance(kind, events.Queued):
        message.queued.position = kind.position
    else:
        message.completed.CopyFrom(_completed(kind))
    return message


def list_models_response(routes: list[Route], default_route: str) -> svc_pb.ListModelsResponse:
    """Every route with its targets and their load."""
    return svc_pb.ListModelsResponse(
        routes=[
            ops_pb.Route(
                name=route.name,
                policy=gen_pb.ROUTE_POLICY_FALLBACK,
                targets=[
                    ops_pb.RouteTarget(
                        backend=target.backend.name,
                        kind=_KINDS.get(target.backend.kind, ops_pb.BACKEND_KIND_UNSPECIFIED),
                        model=target.model,
                        circuit=ops_pb.CIRCUIT_STATE_CLOSED,
                        in_flight=target.slots.in_use,
                        queued=target.slots.waiting,
                        max_concurrency=target.slots.limit,
                        weight=1,
                    )
                    for target in route.targets
                ],
                is_default=route.name == default_route,
            )
            for route in routes
        ]
    )


def _chunk(chunk: events.Chunk) -> ev_pb.Chunk:
    message = ev_pb.Chunk(text=chunk.text, token_count=chunk.token_count, token_ids=chunk.token_ids)
    if chunk.progress is not None:
        progress = chunk.progress
        message.progress.completion_tokens = progress.completion_tokens
        message.progress.max_tokens = progress.max_tokens
        message.progress.tokens_per_second = progress.tokens_per_second
        message.progress.elapsed.CopyFrom(_duration(progress.elapsed))
    if chunk.source is not None:
        message.metadata.model = chunk.source.model
        message.metadata.backend = chunk.source.backend
        message.metadata.attempt = chunk.source.attempt
    return message


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
        usage=ev_pb.Usage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        ),
        timings=ev_pb.Timings(
            queue_time=_duration(timings.queue_time),
            time_to_first_token=_duration(timings.time_to_first_token),
            total_time=_duration(timings.total_time),
            tokens_per_second=timings.tokens_per_second,
        ),
        model=completed.model,
        backend=completed.backend,
        attempts=completed.attempts,
    )


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration
