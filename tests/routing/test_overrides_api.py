"""A request's routing overrides through the real server: refused when looser, used when tighter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb

from llmrouter_server.backends.scripted import ScriptedBackend, Step, words
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
    text,
)

CONFIG = loopback_config(
    backends={"fake": {"kind": "openai", "api_key_env": None}},
    routes={
        "fake-model": {
            "targets": [{"backend": "fake", "model": "m"}],
            "max_attempts": 3,
            "first_token_timeout_seconds": 60,
            "idle_timeout_seconds": 30,
            "race_after_seconds": 2,
            "retry": {"initial_backoff_seconds": 0.01, "max_backoff_seconds": 0.02},
        },
        "strict": {
            "targets": [{"backend": "fake", "model": "m"}],
            "on_mid_stream_failure": "fail",
        },
    },
    default_route="fake-model",
)

REFUSED = "connection refused"

DetailT = TypeVar("DetailT", bound=Message)


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend("fake", words("one two three"))


@pytest.fixture
async def served(backend: ScriptedBackend) -> AsyncIterator[Served]:
    async with serving(CONFIG, {"fake": backend}) as served:
        yield served


def _seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(value * 1e9))
    return duration


def _detail(error: grpc.aio.AioRpcError, kind: type[DetailT]) -> DetailT:
    """The one detail of type ``kind`` in a failed call's status."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert isinstance(status, status_pb2.Status)
    found = []
    for packed in status.details:
        if packed.Is(kind.DESCRIPTOR):
            detail = kind()
            packed.Unpack(detail)
            found.append(detail)
    assert len(found) == 1, f"{len(found)} {kind.DESCRIPTOR.name} details"
    return found[0]


async def _failing(served: Served, request: Any) -> tuple[list[Any], grpc.aio.AioRpcError]:
    """The events of a Generate call that ends with an error, and the error."""
    call = served.stub.Generate(iter([request]))
    events: list[Any] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _read_into(call, events)
    return events, caught.value


async def _read_into(call: Any, events: list[Any]) -> None:
    while (response := await call.read()) is not grpc.aio.EOF:
        events.append(response.event)


@pytest.mark.parametrize(
    ("model", "routing", "field", "description"),
    [
        (
            "fake-model",
            {"max_attempts": 4},
            "start.routing.max_attempts",
            "must be between 1 and the route's 3",
        ),
        (
            "fake-model",
            {"first_token_timeout": _seconds(61)},
            "start.routing.first_token_timeout",
            "61 s is longer than the route's 60 s",
        ),
        (
            "fake-model",
            {"idle_timeout": _seconds(0)},
            "start.routing.idle_timeout",
            "must be positive",
        ),
        (
            "fake-model",
            {"race_after": _seconds(1.5)},
            "start.routing.race_after",
            "must be between the route's 2 s and 3600 s",
        ),
        (
            "fake-model",
            {"policy": gen_pb.ROUTE_POLICY_MERGE},
            "start.routing.policy",
            "MERGE runs several targets at once; this route's policy is FALLBACK "
            "(FALLBACK or WEIGHTED may be asked for)",
        ),
        (
            "strict",
            {"on_mid_stream_failure": gen_pb.MID_STREAM_ACTION_CONTINUE},
            "start.routing.on_mid_stream_failure",
            "this route fails mid-stream; only FAIL is allowed",
        ),
    ],
)
async def test_looser_override_is_invalid_argument_naming_the_field(
    served: Served,
    backend: ScriptedBackend,
    model: str,
    routing: dict[str, Any],
    field: str,
    description: str,
) -> None:
    events, error = await _failing(served, start(model=model, routing=routing))

    assert events == []
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"{field}: {description}"
    violations = _detail(error, error_details_pb2.BadRequest).field_violations
    assert [(v.field, v.description) for v in violations] == [(field, f"{field}: {description}")]
    info = error_info(error)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "INVALID_ARGUMENT", "llmrouter.v1", {"field": field}
    )  # fmt: skip
    assert backend.requests == []

    after = await generate(served.stub, start(model=model))

    assert text(after) == "one two three"
    assert after[-1].completed.finish_reason == ev_pb.FINISH_REASON_STOP


async def test_max_attempts_override_of_one_fails_after_one_attempt(
    served: Served, backend: ScriptedBackend
) -> None:
    backend.script = [Step(error=BackendConnectError("fake", REFUSED))]

    events, error = await _failing(served, start(routing={"max_attempts": 1}))

    assert kinds(events) == ["started", "attempt_failed"]
    failed = events[1].attempt_failed
    assert (failed.attempt, failed.will_retry, failed.reason, failed.tokens) == (
        1, False, f"{REFUSED} before the first token", 0
    )  # fmt: skip
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == (
        f"route 'fake-model': backend 'fake': {REFUSED} before the first token"
    )
    info = error_info(error)
    assert (info.reason, info.metadata["attempts"], info.metadata["backend"]) == (
        "BACKEND_CONNECT", "1", "fake"
    )  # fmt: skip
    assert len(_detail(error, ev_pb.RouteFailure).attempts) == 1
    assert len(backend.requests) == 1
    assert backend.open_streams == 0


async def test_without_the_override_the_route_makes_all_its_attempts(
    served: Served, backend: ScriptedBackend
) -> None:
    backend.script = [Step(error=BackendConnectError("fake", REFUSED))]

    events, error = await _failing(served, start())

    failures = [e.attempt_failed for e in events if e.HasField("attempt_failed")]
    assert [(f.attempt, f.will_retry) for f in failures] == [(1, True), (2, True), (3, False)]
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(error).metadata["attempts"] == "3"
    assert len(backend.requests) == 3


async def test_tighter_override_is_applied_and_the_generation_completes(
    served: Served, backend: ScriptedBackend
) -> None:
    routing = {
        "max_attempts": 2,
        "first_token_timeout": _seconds(5),
        "idle_timeout": _seconds(5),
        "policy": gen_pb.ROUTE_POLICY_WEIGHTED,
        "on_mid_stream_failure": gen_pb.MID_STREAM_ACTION_FAIL,
    }

    call = served.stub.Generate(iter([start(routing=routing)]))
    events = await read_events(call)

    assert text(events) == "one two three"
    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_STOP
    assert len(backend.requests) == 1
