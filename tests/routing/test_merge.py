"""MERGE: both targets at once, their chunks interleaved and tagged by target."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from llmrouter.v1 import events_pb2 as ev_pb

from llmrouter_server.backends.scripted import Script, ScriptedBackend, Step, words
from llmrouter_server.errors import BackendConnectError
from tests.helpers import (
    Served,
    error_info,
    generate,
    kinds,
    loopback_config,
    read_events,
    serving,
    start,
)

pytestmark = pytest.mark.timeout(10)

ROUTE = "merged"
A_TEXT = "The first target speaks slowly"
B_TEXT = "while the second one answers at once and says more"
LATE = 0.2
"""Seconds before each of target 0's tokens; target 1 finishes well before."""

CONFIG = loopback_config(
    backends={name: {"kind": "openai", "api_key_env": None} for name in ("a", "b")},
    routes={
        ROUTE: {
            "policy": "merge",
            "targets": [{"backend": "a", "model": "model-a"}, {"backend": "b", "model": "model-b"}],
        }
    },
    default_route=ROUTE,
    limits={"max_tokens_cap": 256, "default_max_tokens": 64},
)


def _failing(backend: str, after: float = 0.0) -> Script:
    """One token, then a retryable failure ``after`` seconds later (a fresh error per request)."""
    return lambda _: [
        Step("x"),
        Step(delay=after, error=BackendConnectError(backend, "connection reset")),
    ]


@pytest.fixture
def a() -> ScriptedBackend:
    steps = words(A_TEXT, delay=0.01)
    return ScriptedBackend("a", [Step(steps[0].text, delay=LATE), *steps[1:]])


@pytest.fixture
def b() -> ScriptedBackend:
    return ScriptedBackend("b", words(B_TEXT))


@pytest.fixture
async def served(a: ScriptedBackend, b: ScriptedBackend) -> AsyncIterator[Served]:
    async with serving(CONFIG, {"a": a, "b": b}) as served:
        yield served


def _chunks(events: list[Any]) -> list[Any]:
    return [e.chunk for e in events if e.HasField("chunk")]


def _text_of(events: list[Any], target: int) -> str:
    return "".join(c.text for c in _chunks(events) if c.metadata.target == target)


async def test_chunks_are_tagged_by_target_and_each_target_text_is_intact(
    served: Served, a: ScriptedBackend, b: ScriptedBackend
) -> None:
    events = await generate(served.stub, start(model=ROUTE))

    chunks = _chunks(events)
    assert all(c.HasField("metadata") for c in chunks)
    assert {(c.metadata.target, c.metadata.attempt, c.metadata.model, c.metadata.backend)
            for c in chunks} == {(0, 1, "model-a", "a"), (1, 2, "model-b", "b")}  # fmt: skip
    assert _text_of(events, 0) == A_TEXT
    assert _text_of(events, 1) == B_TEXT
    # Target 1 does not wait for target 0: its whole answer comes before 0's first token.
    b_tokens, a_tokens = len(B_TEXT.split()), len(A_TEXT.split())
    assert [c.metadata.target for c in chunks] == [1] * b_tokens + [0] * a_tokens
    assert kinds(events) == ["started"] + ["chunk"] * (a_tokens + b_tokens) + ["completed"]
    completed = events[-1].completed
    assert completed.finish_reason == ev_pb.FINISH_REASON_STOP
    assert (completed.usage.prompt_tokens, completed.usage.completion_tokens) == (
        2, a_tokens + b_tokens
    )  # fmt: skip
    assert sorted(
        (u.attempt, u.target, u.model, u.backend, u.usage.prompt_tokens, u.usage.completion_tokens)
        for u in completed.attempt_usage
    ) == [(1, 0, "model-a", "a", 1, a_tokens), (2, 1, "model-b", "b", 1, b_tokens)]
    assert (a.open_streams, b.open_streams, len(a.requests), len(b.requests)) == (0, 0, 1, 1)


async def test_one_failing_lane_is_reported_once_and_the_other_completes(
    served: Served, a: ScriptedBackend, b: ScriptedBackend
) -> None:
    a.script = _failing("a")

    events = await generate(served.stub, start(model=ROUTE))

    assert kinds(events).count("attempt_failed") == 1
    assert "fallback_used" not in kinds(events)
    [failed] = [e.attempt_failed for e in events if e.HasField("attempt_failed")]
    assert (failed.attempt, failed.target, failed.backend, failed.model) == (1, 0, "a", "model-a")
    assert (failed.will_retry, failed.tokens, failed.error_reason) == (False, 1, "BACKEND_CONNECT")
    assert failed.reason == "connection reset after 1 token"
    assert _text_of(events, 0) == "x"
    assert _text_of(events, 1) == B_TEXT
    assert kinds(events)[-1] == "completed"
    completed = events[-1].completed
    b_tokens = len(B_TEXT.split())
    assert completed.usage.completion_tokens == 1 + b_tokens
    assert sorted((u.target, u.usage.completion_tokens) for u in completed.attempt_usage) == [
        (0, 1), (1, b_tokens)
    ]  # fmt: skip
    assert (len(a.requests), len(b.requests)) == (1, 1)


async def test_every_lane_failing_ends_unavailable(
    served: Served, a: ScriptedBackend, b: ScriptedBackend
) -> None:
    a.script = _failing("a")
    b.script = _failing("b", after=0.1)
    call = served.stub.Generate(iter([start(model=ROUTE)]))
    events: list[Any] = []

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _read_into(call, events)

    failures = [e.attempt_failed for e in events if e.HasField("attempt_failed")]
    assert sorted((f.target, f.attempt, f.will_retry) for f in failures) == [
        (0, 1, False), (1, 2, False)
    ]  # fmt: skip
    assert "completed" not in kinds(events)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info(caught.value)
    assert (info.reason, info.metadata["attempts"]) == ("BACKEND_CONNECT", "2")
    assert info.metadata["offset"] == str(len(events))
    assert caught.value.details() == (
        "route 'merged': 2 attempts failed; the last: backend 'b': connection reset after 1 token"
    )
    assert (len(a.requests), len(b.requests)) == (1, 1)


async def _read_into(call: Any, events: list[Any]) -> None:
    """Reads until the call ends, keeping what came before a failure in ``events``."""
    while batch := await read_events(call, limit=1):
        events.extend(batch)
