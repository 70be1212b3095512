"""The span of each generation, through gRPC: attributes, events, status, parents."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import service_pb2 as svc_pb
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from llmrouter_server.backends.scripted import ScriptedBackend, Step
from llmrouter_server.errors import BackendStatusError
from tests.helpers import cancel, eventually, kinds, loopback_config, scripted_config, start
from tests.telemetry.otel_serving import (
    CALLER_SPAN_ID,
    CALLER_TRACE_ID,
    TRACEPARENT,
    Observed,
    observed,
)

pytestmark = pytest.mark.timeout(20)

CALLER = [("traceparent", TRACEPARENT), ("tracestate", "vendor=abc")]
"""A caller's trace context metadata."""


def pause() -> svc_pb.GenerateRequest:
    return svc_pb.GenerateRequest(pause=gen_pb.PauseGeneration(reason="test"))


def resume() -> svc_pb.GenerateRequest:
    return svc_pb.GenerateRequest(resume=gen_pb.ResumeGeneration())


def _only_span(server: Observed) -> ReadableSpan:
    spans = server.finished_spans()
    assert [span.name for span in spans] == ["llmrouter.generation"]
    return spans[0]


def _events(span: ReadableSpan) -> list[tuple[str, dict[str, Any]]]:
    return [(event.name, dict(event.attributes or {})) for event in span.events]


async def _generate(server: Observed, *requests: Any, metadata: Any = ()) -> list[Any]:
    call = server.stub.Generate(iter(requests), metadata=metadata)
    return [response.event async for response in call]


async def test_a_completed_generation_is_one_span_continuing_the_callers_trace() -> None:
    backend = ScriptedBackend("s", [Step(" a"), Step(" b"), Step(" c")])
    async with observed(scripted_config("s"), {"s": backend}) as server:
        events = await _generate(server, start(stream_id="one"), metadata=CALLER)
        span = _only_span(server)
    assert kinds(events) == ["started", "chunk", "chunk", "chunk", "completed"]
    assert dict(span.attributes or {}) == {
        "llmrouter.stream_id": "one",
        "llmrouter.route": "s-model",
        "llmrouter.model": "m",
        "llmrouter.backend": "s",
        "llmrouter.flow_mode": "auto",
        "llmrouter.tenant": "",
        "gen_ai.request.model": "s-model",
        "llmrouter.finish_reason": "stop",
        "gen_ai.response.finish_reasons": ("stop",),
        "llmrouter.state": "completed",
        "llmrouter.attempts": 1,
        "gen_ai.usage.input_tokens": 1,
        "gen_ai.usage.output_tokens": 3,
    }
    assert _events(span) == [
        (
            "attempt.started",
            {
                "llmrouter.attempt": 1,
                "llmrouter.target": 0,
                "llmrouter.backend": "s",
                "llmrouter.model": "m",
            },
        ),
        ("first_chunk", {}),
    ]
    assert span.kind is SpanKind.SERVER
    assert span.status.status_code is StatusCode.UNSET
    assert f"{span.context.trace_id:032x}" == CALLER_TRACE_ID
    assert span.parent is not None
    assert span.parent.is_remote
    assert f"{span.parent.span_id:016x}" == CALLER_SPAN_ID
    assert span.context.trace_state.get("vendor") == "abc"


async def test_a_failed_generation_ends_its_span_with_status_error() -> None:
    refusal = BackendStatusError("s", 400, "bad request")
    backend = ScriptedBackend("s", [Step(" a"), Step(error=refusal)])
    async with observed(scripted_config("s"), {"s": backend}) as server:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _generate(server, start(stream_id="bad"))
        span = _only_span(server)
    message = "route 's-model': backend 's': HTTP 400: bad request"
    assert caught.value.details() == message
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == message
    attributes = dict(span.attributes or {})
    keys = ("llmrouter.state", "error.type", "llmrouter.error")
    assert {key: attributes[key] for key in keys} == {
        "llmrouter.state": "failed",
        "error.type": "BACKEND_STATUS",
        "llmrouter.error": message,
    }
    assert "llmrouter.finish_reason" not in attributes
    assert (attributes["gen_ai.usage.output_tokens"], attributes["llmrouter.attempts"]) == (1, 1)
    names = [name for name, _ in _events(span)]
    assert names == ["attempt.started", "first_chunk", "attempt.failed"]
    assert _events(span)[2][1] == {
        "llmrouter.attempt": 1,
        "llmrouter.target": 0,
        "llmrouter.backend": "s",
        "llmrouter.model": "m",
        "error.type": "BACKEND_STATUS",
        "llmrouter.error": "HTTP 400: bad request",
        "llmrouter.tokens": 1,
        "llmrouter.will_retry": False,
        "llmrouter.retry_delay_seconds": 0.0,
    }
    assert span.parent is None  # no caller context: a new trace


async def test_a_cancelled_generation_says_who_cancelled_and_is_not_an_error() -> None:
    backend = ScriptedBackend("s", [Step(" a"), Step(stall=True)])
    async with observed(scripted_config("s"), {"s": backend}) as server:
        call: Any = server.stub.Generate()
        await call.write(start(stream_id="gone"))
        while not (await call.read()).event.HasField("chunk"):
            pass
        await call.write(cancel())
        while not (await call.read()).event.HasField("completed"):
            pass
        span = _only_span(server)
    attributes = dict(span.attributes or {})
    assert (
        attributes["llmrouter.state"],
        attributes["llmrouter.finish_reason"],
        attributes["llmrouter.cancelled_by"],
    ) == ("cancelled", "cancelled", "caller")
    assert span.status.status_code is StatusCode.UNSET
    assert [name for name, _ in _events(span)] == ["attempt.started", "first_chunk"]


async def test_a_fallback_shows_as_failed_attempt_fallback_and_a_second_attempt() -> None:
    first = ScriptedBackend("a", [Step(error=BackendStatusError("a", 503, "busy"))])
    second = ScriptedBackend("b", [Step(" x"), Step(" y")])
    targets = [{"backend": "a", "model": "m"}, {"backend": "b", "model": "n"}]
    config = loopback_config(
        backends={name: {"kind": "openai", "api_key_env": None} for name in ("a", "b")},
        routes={"both": {"targets": targets}},
        default_route="both",
    )
    async with observed(config, {"a": first, "b": second}) as server:
        await _generate(server, start())
        span = _only_span(server)
    names = [name for name, _ in _events(span)]
    assert names == [
        "attempt.started",
        "attempt.failed",
        "fallback.used",
        "attempt.started",
        "first_chunk",
    ]
    assert _events(span)[2][1] == {
        "llmrouter.from_backend": "a",
        "llmrouter.from_model": "m",
        "llmrouter.to_backend": "b",
        "llmrouter.to_model": "n",
        "llmrouter.to_target": 1,
        "llmrouter.action": "continue",
    }
    assert _events(span)[3][1]["llmrouter.attempt"] == 2
    attributes = dict(span.attributes or {})
    assert (attributes["llmrouter.backend"], attributes["llmrouter.model"]) == ("b", "n")
    assert attributes["llmrouter.attempts"] == 2


async def test_pause_release_and_resume_are_span_events() -> None:
    backend = ScriptedBackend("s", [Step(" a"), Step(" b", delay=0.05), Step(" c")])
    config = scripted_config("s", streams={"release_after_seconds": 0.05})
    async with observed(config, {"s": backend}) as server:
        call: Any = server.stub.Generate()
        await call.write(start())
        while not (await call.read()).event.HasField("chunk"):
            pass
        await call.write(pause())
        while not (await call.read()).event.HasField("paused"):
            pass
        await eventually(lambda: backend.open_streams == 0)  # released
        await call.write(resume())
        while not (await call.read()).event.HasField("completed"):
            pass
        span = _only_span(server)
    assert [name for name, _ in _events(span)] == [
        "attempt.started",
        "first_chunk",
        "paused",
        "resumed",
        "attempt.continued",
    ]
    assert _events(span)[2][1] == {"llmrouter.pause.reason": "test"}
    assert _events(span)[4][1]["llmrouter.attempt"] == 1
