"""The call's gRPC deadline bounds the retries: no wait runs past it."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from llmrouter_server.backends.scripted import ScriptedBackend, Step
from llmrouter_server.errors import BackendStatusError
from tests.helpers import error_info, kinds, loopback_config, serving, start

CONFIG = loopback_config(
    backends={"a": {"kind": "openai", "api_key_env": None}},
    routes={"alone": {"max_attempts": 3, "targets": [{"backend": "a", "model": "m"}]}},
    default_route="alone",
)


async def test_a_retry_after_beyond_the_deadline_ends_the_call_at_once() -> None:
    limited = ScriptedBackend(
        "a", [Step(error=BackendStatusError("a", 429, "slow down", retry_after=30.0))]
    )
    async with serving(CONFIG, {"a": limited}) as served:
        call = served.stub.Generate(iter([start()]), timeout=5.0)
        events: list[Any] = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _read_into(call, events)

    assert kinds(events) == ["started", "attempt_failed"]
    assert events[1].attempt_failed.will_retry is False
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(caught.value).metadata["attempts"] == "1"
    # Waiting out the Retry-After would have ended in DEADLINE_EXCEEDED instead.
    assert len(limited.requests) == 1


async def test_without_a_deadline_the_same_route_waits_for_the_retry_after() -> None:
    first = iter([[Step(error=BackendStatusError("a", 429, "slow down", retry_after=0.3))]])
    limited = ScriptedBackend("a", lambda _: next(first, [Step("ok")]))
    async with serving(CONFIG, {"a": limited}) as served:
        call = served.stub.Generate(iter([start()]))
        events = [response.event async for response in call]

    assert kinds(events) == ["started", "attempt_failed", "fallback_used", "chunk", "completed"]
    assert events[1].attempt_failed.retry_delay.ToTimedelta().total_seconds() >= 0.29
    assert len(limited.requests) == 2


async def _read_into(call: Any, events: list[Any]) -> None:
    while (response := await call.read()) is not grpc.aio.EOF:
        events.append(response.event)
