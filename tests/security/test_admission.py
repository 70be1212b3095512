"""Admission by identity, and backend queues bounded and shared, through the real server.

Keys are configured as their SHA-256 in ``auth.api_keys`` with per-key
limits; callers send ``authorization: Bearer <key>``. The scripted backend
answers each key's prompt with that key's words, and is held at its first
token until a test lets it go, so every admission and queue decision has
been taken (and can be read off exactly) before any generation ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.auth.principal import Principal
from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.backends.scripted import ScriptedBackend, Step, words
from llmrouter_server.config import Config
from llmrouter_server.streams.admission import AdmissionStatus
from tests.helpers import (
    Served,
    error_info,
    eventually,
    loopback_config,
    serving,
    start,
    status_detail,
)

pytestmark = pytest.mark.timeout(60)

CALL_SECONDS = 30.0
"""Deadline of every call that should complete."""


def answer(prompt: str) -> str:
    """What the backend answers a prompt ``NAME:N``: N words ``NAME0 NAME1 ...``."""
    name, _, count = prompt.partition(":")
    return " ".join(f"{name}{index}" for index in range(int(count or 6)))


class GatedBackend(ScriptedBackend):
    """Answers ``answer(prompt)``, each stream held before its first token until ``gate``."""

    def __init__(self, name: str, *, max_concurrency: int) -> None:
        super().__init__(name, self._script, max_concurrency=max_concurrency)
        self.gate = asyncio.Event()

    @staticmethod
    def _script(request: BackendRequest) -> list[Step]:
        return words(answer(request.messages[0].content))

    async def stream(self, request: BackendRequest) -> AsyncGenerator[Delta, None]:
        await self.gate.wait()
        async for delta in super().stream(request):
            yield delta


def key_of(name: str) -> str:
    return f"secret-{name}"


def key_entry(name: str, tenant: str, **limits: Any) -> dict[str, Any]:
    sha256 = hashlib.sha256(key_of(name).encode()).hexdigest()
    return {"id": name, "sha256": sha256, "tenant": tenant, "limits": limits}


def as_(name: str) -> tuple[tuple[str, str]]:
    """Call metadata carrying a key's bearer token."""
    return (("authorization", f"Bearer {key_of(name)}"),)


def auth_config(*keys: dict[str, Any], max_queued: int = 9) -> Config:
    return loopback_config(
        backends={"fake": {"kind": "openai", "api_key_env": None, "max_queued": max_queued}},
        routes={"fake-model": {"targets": [{"backend": "fake", "model": "m"}]}},
        default_route="fake-model",
        limits={"max_tokens_cap": 1000},
        auth={"api_keys": list(keys)},
    )


def admission(served: Served, name: str) -> AdmissionStatus:
    """What key ``name`` uses of its limits now (admission is keyed by configuration entry)."""
    principal = Principal(name, "", entry=f"auth.api_keys[{name}]")
    return served.server.generations.admission.status(principal)


def slots(served: Served) -> Any:
    return served.server.generations.router.resolve("fake-model").targets[0].slots


def retry_delay(error: grpc.aio.AioRpcError) -> float | None:
    """The RetryInfo delay of a failed call, in seconds; None without one."""
    info = status_detail(error, error_details_pb2.RetryInfo)
    return None if info is None else info.retry_delay.ToNanoseconds() / 1e9


class Caller:
    """One Generate call of one key; records each event with when it arrived."""

    def __init__(self, served: Served, key: str, prompt: str, max_tokens: int) -> None:
        request = start(prompt, sampling={"max_tokens": max_tokens})
        self.key = key
        self.call = served.stub.Generate(iter([request]), metadata=as_(key), timeout=CALL_SECONDS)
        self.events: list[tuple[float, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for response in self.call:
            self.events.append((time.monotonic(), response.event))

    @property
    def kinds(self) -> list[str]:
        return [event.WhichOneof("kind") for _, event in self.events]

    @property
    def text(self) -> str:
        return "".join(event.chunk.text for _, event in self.events if event.HasField("chunk"))

    def first_position(self) -> int | None:
        positions = [event.queued.position for _, event in self.events if event.HasField("queued")]
        return positions[0] if positions else None


def most_in_any_window(tokens: list[tuple[float, int]], window: float) -> int:
    """The most tokens delivered within any ``window`` seconds."""
    tokens = sorted(tokens)
    most = total = 0
    first = 0
    for at, count in tokens:
        total += count
        while tokens[first][0] < at - window:
            total -= tokens[first][1]
            first += 1
        most = max(most, total)
    return most


# The fifty callers: key, tenant, limits, callers, max_tokens, words answered.
FIFTY = {
    "team-a": ("a", {"concurrent_generations": 4}, 17, 8, 6),
    "team-b": ("b", {"output_tokens_per_minute": 200}, 17, 40, 10),
    "team-c": (
        "c",
        {"concurrent_generations": 2, "requests_per_minute": 30, "output_tokens_per_minute": 1000},
        16,
        8,
        8,
    ),
}


@pytest.fixture
async def fifty() -> AsyncIterator[tuple[Served, GatedBackend]]:
    keys = [
        key_entry(name, tenant, on_limit="queue", **limits)
        for name, (tenant, limits, *_) in FIFTY.items()
    ]
    backend = GatedBackend("fake", max_concurrency=2)
    async with serving(auth_config(*keys, max_queued=9), {"fake": backend}) as served:
        yield served, backend


async def test_fifty_callers_on_three_keys_stay_within_their_limits_and_the_queue_bound(
    fifty: tuple[Served, GatedBackend],
) -> None:
    served, backend = fifty
    began = time.monotonic()
    callers = [
        Caller(served, name, f"{name}:{count}", max_tokens)
        for name, (_, _, callers, max_tokens, count) in FIFTY.items()
        for _ in range(callers)
    ]
    queue = slots(served)
    peak = 0

    def everyone_placed() -> bool:
        statuses = [admission(served, name) for name in FIFTY]
        running = [(s.running, s.waiting) for s in statuses]
        return running == [(4, 13), (5, 12), (2, 14)] and (queue.in_use, queue.waiting) == (2, 9)

    await eventually(everyone_placed, seconds=20)
    statuses = {name: admission(served, name) for name in FIFTY}
    peak = queue.waiting
    backend.gate.set()
    while not all(caller.task.done() for caller in callers):
        peak = max(peak, queue.waiting)
        await asyncio.sleep(0.001)
    await asyncio.gather(*(caller.task for caller in callers))
    elapsed = time.monotonic() - began

    # Admitted at once: four of team-a's (concurrency), five of team-b's
    # (200 tokens / 40 reserved), two of team-c's; the backend runs two, nine wait.
    team_b = statuses["team-b"]
    assert (team_b.running, team_b.waiting, team_b.reserved) == (5, 12, 200)
    assert team_b.tokens_available is not None
    assert team_b.tokens_available < 40  # not one more reservation: the others wait
    assert peak == 9  # reached, never passed
    for caller in callers:
        _, _, _, _, count = FIFTY[caller.key]
        assert caller.kinds[-1] == "completed"
        assert caller.text == answer(f"{caller.key}:{count}")
        assert caller.events[-1][1].completed.usage.completion_tokens == count
    # Queue positions: each admission line from 1 up, and the backend's queue of nine.
    firsts = Counter(caller.first_position() for caller in callers)
    expected = Counter([*range(1, 14), *range(1, 13), *range(1, 15), *range(1, 10)])
    assert firsts == expected + Counter({None: 2})
    # No key got more output tokens than its bucket over the run (shorter than a minute).
    delivered = {
        name: [
            (at, event.chunk.token_count)
            for caller in callers
            if caller.key == name
            for at, event in caller.events
            if event.HasField("chunk")
        ]
        for name in FIFTY
    }
    windows = {name: most_in_any_window(tokens, 60) for name, tokens in delivered.items()}
    assert elapsed < 60  # so one window holds the whole run
    assert windows == {"team-a": 17 * 6, "team-b": 17 * 10, "team-c": 16 * 8}
    assert windows["team-b"] <= 200  # 17 reservations of 40 fit only through refunds
    assert windows["team-c"] <= 1000
    # Every reservation came back; what was used stays used.
    after = admission(served, "team-b")
    assert (after.running, after.waiting, after.reserved) == (0, 0, 0)
    assert after.tokens_available is not None
    assert 200 - 17 * 10 <= after.tokens_available <= 200


@pytest.fixture
async def reject() -> AsyncIterator[tuple[Served, GatedBackend]]:
    keys = [
        key_entry("tokens", "t", output_tokens_per_minute=100),
        key_entry("single", "t", concurrent_generations=1),
        key_entry("rate", "t", requests_per_minute=2),
        key_entry("queued", "t", output_tokens_per_minute=100, on_limit="queue"),
        key_entry("waits", "t", concurrent_generations=1, on_limit="queue"),
    ]
    backend = GatedBackend("fake", max_concurrency=8)
    async with serving(auth_config(*keys), {"fake": backend}) as served:
        yield served, backend


async def refused(served: Served, key: str, max_tokens: int = 10) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await Caller(served, key, "x:3", max_tokens).task
    return caught.value


async def test_over_the_output_token_bucket_is_resource_exhausted_with_retry_info(
    reject: tuple[Served, GatedBackend],
) -> None:
    served, backend = reject
    running = Caller(served, "tokens", "x:3", 60)
    await eventually(lambda: admission(served, "tokens").running == 1)

    error = await refused(served, "tokens", 60)
    backend.gate.set()
    await running.task

    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details().startswith(
        "auth.api_keys[tokens].limits.output_tokens_per_minute: 60 tokens reserved of 100, "
        "this request reserves 60; retry in "
    )
    delay = retry_delay(error)
    assert delay is not None
    assert 10.0 < delay <= 12.0  # 20 tokens short at 100 a minute, less what refilled since
    assert error_info(error).reason == "RESOURCE_EXHAUSTED"
    assert running.text == "x0 x1 x2"
    tokens = admission(served, "tokens").tokens_available
    assert tokens is not None
    assert 97 <= tokens <= 100  # 60 reserved, 57 of them refunded


async def test_over_the_concurrency_limit_is_resource_exhausted_without_a_retry_delay(
    reject: tuple[Served, GatedBackend],
) -> None:
    served, backend = reject
    running = Caller(served, "single", "x:3", 10)
    await eventually(lambda: admission(served, "single").running == 1)

    error = await refused(served, "single")
    backend.gate.set()
    await running.task
    after = await Caller(served, "single", "x:2", 10).task

    assert (error.code(), error.details()) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "auth.api_keys[single].limits.concurrent_generations: 1 generations running of 1; "
        "retry when one of them ends",
    )
    assert retry_delay(error) is None
    assert after is None  # the place came back when the first ended


async def test_over_the_requests_per_minute_is_resource_exhausted_with_retry_info(
    reject: tuple[Served, GatedBackend],
) -> None:
    served, backend = reject
    backend.gate.set()
    for _ in range(2):
        await Caller(served, "rate", "x:1", 10).task

    error = await refused(served, "rate")

    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details().startswith(
        "auth.api_keys[rate].limits.requests_per_minute: 2 requests started of 2; retry in "
    )
    delay = retry_delay(error)
    assert delay is not None
    assert 28.0 < delay <= 30.0  # one request of 2 a minute, less what refilled since


async def test_a_request_larger_than_the_bucket_is_invalid_argument_even_when_queueing(
    reject: tuple[Served, GatedBackend],
) -> None:
    served, _ = reject

    error = await refused(served, "queued", 101)

    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "start.sampling.max_tokens: 101 tokens exceed "
        "auth.api_keys[queued].limits.output_tokens_per_minute of 100: such a request is "
        "never admitted; ask for at most 100",
    )
    assert admission(served, "queued").running == 0


async def test_a_queued_caller_that_gives_up_leaves_the_line(
    reject: tuple[Served, GatedBackend],
) -> None:
    served, backend = reject
    running = Caller(served, "waits", "x:3", 10)
    await eventually(lambda: admission(served, "waits").running == 1)
    gives_up = Caller(served, "waits", "x:3", 10)
    await eventually(lambda: gives_up.first_position() == 1)
    behind = Caller(served, "waits", "x:2", 10)
    await eventually(lambda: behind.first_position() == 2)

    gives_up.call.cancel()
    await eventually(lambda: [e.queued.position for _, e in behind.events][-1:] == [1])
    backend.gate.set()
    await asyncio.gather(running.task, behind.task)

    assert gives_up.kinds == ["started", "queued"]
    assert behind.kinds == ["started", "queued", "queued", *["chunk"] * 2, "completed"]
    assert admission(served, "waits") == AdmissionStatus()


@pytest.fixture
async def shared() -> AsyncIterator[tuple[Served, GatedBackend]]:
    keys = [key_entry(name, name) for name in ("x", "y")]
    backend = GatedBackend("fake", max_concurrency=1)
    async with serving(auth_config(*keys, max_queued=3), {"fake": backend}) as served:
        yield served, backend


async def test_a_tenant_cannot_fill_the_backend_queue_and_another_still_gets_a_place(
    shared: tuple[Served, GatedBackend],
) -> None:
    served, backend = shared
    queue = slots(served)
    running = Caller(served, "x", "x:2", 10)
    await eventually(lambda: queue.in_use == 1)
    waiting: list[Caller] = []
    for _ in range(2):  # ceil(0.5 * 3) places, taken one after the other
        waiting.append(Caller(served, "x", "x:2", 10))
        await eventually(lambda: queue.waiting == len(waiting))

    over_share = await refused(served, "x")
    other = Caller(served, "y", "y:2", 10)
    await eventually(lambda: queue.waiting == 3)
    over_bound = await refused(served, "y")
    models = await served.stub.ListModels(svc_pb.ListModelsRequest(), metadata=as_("x"))
    backend.gate.set()
    await asyncio.gather(*(caller.task for caller in [running, *waiting, other]))

    assert (over_share.code(), over_share.details()) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "backend fake: tenant 'x' already holds 2 of the 3 queued places, its share "
        "(auth.api_keys[x].limits.queue_share: 0.5 of backends.fake.max_queued)",
    )
    assert (over_bound.code(), over_bound.details()) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "backend fake: 3 generations already queued (backends.fake.max_queued)",
    )
    assert retry_delay(over_share) is None
    assert [caller.first_position() for caller in [running, *waiting, other]] == [None, 1, 2, 3]
    assert other.text == "y0 y1"
    # A full queue is not the backend failing: its circuit stays closed.
    assert models.routes[0].targets[0].circuit == ops_pb.CIRCUIT_STATE_CLOSED
    assert (queue.in_use, queue.waiting) == (0, 0)
