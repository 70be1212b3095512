"""Trace context from the caller's metadata to the HTTP upstream's ``traceparent``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmrouter_server.config import Config
from tests.helpers import kinds, loopback_config, start
from tests.routing.faults import FaultUpstream
from tests.telemetry.otel_serving import CALLER_TRACE_ID, TRACEPARENT, Observed, observed

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def upstream() -> AsyncIterator[FaultUpstream]:
    upstream = FaultUpstream(tokens=3)
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.stop()


def _config(upstream: FaultUpstream, **overrides: Any) -> Config:
    return loopback_config(
        backends={"up": {"kind": "openai", "base_url": upstream.base_url, "api_key_env": None}},
        routes={"up-model": {"targets": [{"backend": "up", "model": "m"}]}},
        default_route="up-model",
        **overrides,
    )


async def _generate(server: Observed, metadata: Any = ()) -> list[str]:
    call = server.stub.Generate(iter([start()]), metadata=metadata)
    return kinds([response.event async for response in call])


async def test_the_upstream_request_is_a_child_of_the_generation_span(
    upstream: FaultUpstream,
) -> None:
    caller = [("traceparent", TRACEPARENT), ("tracestate", "vendor=abc")]
    async with observed(_config(upstream)) as server:
        assert await _generate(server, caller) == ["started", *["chunk"] * 3, "completed"]
        (span,) = server.finished_spans()
    headers = upstream.requests[0].headers
    assert f"{span.context.trace_id:032x}" == CALLER_TRACE_ID
    assert headers["traceparent"] == f"00-{CALLER_TRACE_ID}-{span.context.span_id:016x}-01"
    assert headers["tracestate"] == "vendor=abc"


async def test_a_generation_without_caller_context_starts_a_trace_the_upstream_joins(
    upstream: FaultUpstream,
) -> None:
    async with observed(_config(upstream)) as server:
        await _generate(server)
        (span,) = server.finished_spans()
    assert span.parent is None
    context = span.context
    flags = f"{int(context.trace_flags):02x}"  # sampled, and (SDK 1.45) a random trace id
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}"
    assert upstream.requests[0].headers["traceparent"] == expected
    assert "tracestate" not in upstream.requests[0].headers


async def test_without_a_tracer_the_callers_context_passes_through_unchanged(
    upstream: FaultUpstream,
) -> None:
    async with observed(_config(upstream), in_memory=False) as server:
        assert server.telemetry.tracer_provider is None
        await _generate(server, [("traceparent", TRACEPARENT)])
        await _generate(server)
    first, second = upstream.requests
    assert first.headers["traceparent"] == TRACEPARENT
    assert "traceparent" not in second.headers


async def test_a_malformed_traceparent_starts_a_new_trace(upstream: FaultUpstream) -> None:
    async with observed(_config(upstream)) as server:
        await _generate(server, [("traceparent", "00-not-a-trace-01")])
        (span,) = server.finished_spans()
    assert span.parent is None
    assert f"{span.context.trace_id:032x}" in upstream.requests[0].headers["traceparent"]
