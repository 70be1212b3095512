"""Circuit breakers as clients see them: ListModels, skipped targets, probes, grpc health.

The route is [a, b] over two scripted backends with a failure threshold of 2:
``a`` refuses every request, ``b`` answers. Time is the targets' injected clock
(``TargetHealth.clock``), so a cooldown passes when a test says so; the real
cooldown is long enough never to pass during a test. A half-open circuit lets
exactly one attempt through (the probe); the route's grpc health status is
NOT_SERVING while every target's circuit is open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.backends.scripted import Script, ScriptedBackend, Step, words
from llmrouter_server.errors import BackendConnectError, BackendStatusError
from tests.helpers import (
    Served,
    error_info,
    eventually,
    generate,
    kinds,
    loopback_config,
    read_events,
    serving,
    start,
    text,
)

pytestmark = pytest.mark.timeout(10)

ROUTE = "pair"
COOLDOWN = 30.0
ANSWER = "b answers this"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
OPEN, CLOSED, HALF_OPEN = (
    ops_pb.CIRCUIT_STATE_OPEN,
    ops_pb.CIRCUIT_STATE_CLOSED,
    ops_pb.CIRCUIT_STATE_HALF_OPEN,
)

_BREAKER = {"failure_threshold": 2, "cooldown_seconds": COOLDOWN}
CONFIG = loopback_config(
    backends={
        name: {"kind": "openai", "api_key_env": None, "circuit_breaker": _BREAKER}
        for name in ("a", "b")
    },
    routes={
        ROUTE: {
            "max_attempts": 2,
            "first_token_timeout_seconds": 0.5,
            "targets": [{"backend": "a", "model": "model-a"}, {"backend": "b", "model": "model-b"}],
        }
    },
    default_route=ROUTE,
)


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def refusing(backend: str) -> Script:
    """Every request fails at once with a retryable error (a fresh one each time)."""
    return lambda _: [Step(error=BackendConnectError(backend, "connection refused"))]


@pytest.fixture
def a() -> ScriptedBackend:
    return ScriptedBackend("a", refusing("a"))


@pytest.fixture
def b() -> ScriptedBackend:
    return ScriptedBackend("b", words(ANSWER))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def served(a: ScriptedBackend, b: ScriptedBackend, clock: FakeClock) -> AsyncIterator[Served]:
    async with serving(CONFIG, {"a": a, "b": b}) as served:
        book = served.server.generations.router.health
        for backend, model in (("a", "model-a"), ("b", "model-b")):
            book.get(backend, model).clock = clock
        yield served


async def circuits(served: Served) -> list[int]:
    """The circuit state of each target of the route, as ListModels shows it."""
    response = await served.stub.ListModels(svc_pb.ListModelsRequest())
    [route] = [r for r in response.routes if r.name == ROUTE]
    return [target.circuit for target in route.targets]


async def fails_over(served: Served) -> list[Any]:
    """One generation on which a fails and b answers; its events."""
    events = await generate(served.stub, start(model=ROUTE))
    assert kinds(events)[:3] == ["started", "attempt_failed", "fallback_used"]
    assert events[1].attempt_failed.backend == "a"
    assert text(events) == ANSWER
    return events


async def test_an_open_circuit_shows_in_list_models_and_its_target_is_skipped(
    served: Served, a: ScriptedBackend, b: ScriptedBackend
) -> None:
    assert await circuits(served) == [CLOSED, CLOSED]
    await fails_over(served)
    assert await circuits(served) == [CLOSED, CLOSED]
    await fails_over(served)
    assert await circuits(served) == [OPEN, CLOSED]

    events = await generate(served.stub, start(model=ROUTE))

    assert kinds(events) == ["started", "chunk", "chunk", "chunk", "completed"]
    assert text(events) == ANSWER
    completed = events[-1].completed
    assert (completed.attempts, completed.model, completed.backend) == (1, "model-b", "b")
    assert (len(a.requests), len(b.requests)) == (2, 3)


async def test_after_the_cooldown_one_generation_probes_and_a_failed_probe_reopens(
    served: Served, a: ScriptedBackend, clock: FakeClock
) -> None:
    await fails_over(served)
    await fails_over(served)
    clock.advance(COOLDOWN + 1)
    assert await circuits(served) == [HALF_OPEN, CLOSED]

    events = await fails_over(served)

    assert len(a.requests) == 3
    failed = events[1].attempt_failed
    assert (failed.attempt, failed.target, failed.will_retry) == (1, 0, True)
    assert await circuits(served) == [OPEN, CLOSED]
    # Open again for a whole cooldown from the failed probe.
    clock.advance(COOLDOWN - 1)
    assert await circuits(served) == [OPEN, CLOSED]


async def test_a_half_open_circuit_lets_exactly_one_probe_through(
    served: Served, a: ScriptedBackend, clock: FakeClock
) -> None:
    await fails_over(served)
    await fails_over(served)
    clock.advance(COOLDOWN + 1)
    a.script = [Step(stall=True)]  # the probe hangs until its first-token timeout
    probe = served.stub.Generate(iter([start(model=ROUTE)]))
    await eventually(lambda: a.open_streams == 1)

    # While the probe is in flight, the next generation must not try a.
    events = await generate(served.stub, start(model=ROUTE))
    probed = [response.event async for response in probe]

    assert kinds(events) == ["started", "chunk", "chunk", "chunk", "completed"]
    assert events[-1].completed.backend == "b"
    assert len(a.requests) == 3
    assert probed[1].attempt_failed.reason == "no first token within 0.5 s"
    assert await circuits(served) == [OPEN, CLOSED]


async def test_a_route_whose_every_circuit_is_open_refuses_at_once(
    served: Served, b: ScriptedBackend
) -> None:
    b.script = refusing("b")
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError):
            await generate(served.stub, start(model=ROUTE))
    assert await circuits(served) == [OPEN, OPEN]

    # No deadline on the call: only the open circuits can end it.
    call = served.stub.Generate(iter([start(model=ROUTE)]))
    try:
        async with asyncio.timeout(2):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await read_events(call)
    except TimeoutError:
        pytest.fail("the generation was still waiting for a circuit 2 s after it started")
    finally:
        call.cancel()

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == (
        "route 'pair': every target's circuit is open after repeated failures"
    )


async def _watch_until(served: Served, service: str, status: int) -> None:
    """Waits (at most 2 s) until grpc health's Watch reports ``status`` for ``service``."""
    health = health_pb2_grpc.HealthStub(served.channel)
    call = health.Watch(health_pb2.HealthCheckRequest(service=service), timeout=2)
    try:
        async for response in call:
            if response.status == status:
                return
    finally:
        call.cancel()
    raise AssertionError(f"Watch({service!r}) ended before reporting {status}")


async def test_route_health_is_not_serving_while_every_target_is_open(
    served: Served, b: ScriptedBackend, clock: FakeClock
) -> None:
    health = health_pb2_grpc.HealthStub(served.channel)
    check = health_pb2.HealthCheckRequest(service=ROUTE)
    assert (await health.Check(check)).status == SERVING
    b.script = refusing("b")
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await generate(served.stub, start(model=ROUTE))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(caught.value).metadata["attempts"] == "2"
    assert await circuits(served) == [OPEN, OPEN]

    await _watch_until(served, ROUTE, NOT_SERVING)

    assert (await health.Check(check)).status == NOT_SERVING
    assert (await health.Check(health_pb2.HealthCheckRequest())).status == SERVING
    b.script = words(ANSWER)
    clock.advance(COOLDOWN + 1)
    await fails_over(served)  # a's probe fails, b's succeeds
    await _watch_until(served, ROUTE, SERVING)
    assert (await health.Check(check)).status == SERVING
    assert await circuits(served) == [OPEN, CLOSED]


async def test_a_circuit_that_opens_mid_generation_ends_the_retries_instead_of_waiting() -> None:
    """The only target's circuit opens on the generation's second failure: the third
    attempt would have to wait the whole cooldown, so the route gives up at once."""
    failing = ScriptedBackend("a", [Step(error=BackendConnectError("a", "refused"))])
    config = loopback_config(
        backends={"a": {"kind": "openai", "api_key_env": None, "circuit_breaker": _BREAKER}},
        routes={
            "alone": {
                "max_attempts": 3,
                "retry": {"initial_backoff_seconds": 0.01, "max_backoff_seconds": 0.02},
                "targets": [{"backend": "a", "model": "model-a"}],
            }
        },
        default_route="alone",
    )
    async with serving(config, {"a": failing}) as served:
        call = served.stub.Generate(iter([start()]))
        events: list[Any] = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _read_into(call, events)

    assert kinds(events) == ["started", "attempt_failed", "fallback_used", "attempt_failed"]
    assert [e.attempt_failed.will_retry for e in events if e.HasField("attempt_failed")] == [
        True,
        False,
    ]
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(caught.value).metadata["attempts"] == "2"
    assert len(failing.requests) == 2


async def _read_into(call: Any, events: list[Any]) -> None:
    while (response := await call.read()) is not grpc.aio.EOF:
        events.append(response.event)


async def test_requests_the_backend_refuses_do_not_open_its_circuit() -> None:
    """A client's bad requests (a 4xx) are its own: they never take the target away."""
    refusing = ScriptedBackend("a", [Step(error=BackendStatusError("a", 400, "prompt too long"))])
    async with serving(CONFIG, {"a": refusing, "b": ScriptedBackend("b", words(ANSWER))}) as s:
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await generate(s.stub, start())
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        models = await s.stub.ListModels(svc_pb.ListModelsRequest())

    assert [t.circuit for t in models.routes[0].targets] == [CLOSED, CLOSED]
    assert len(refusing.requests) == 3
