"""GetStats: the stats observer's arithmetic on a fake clock, and the RPC on a real server."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any, cast

import grpc
import pytest
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.auth.principal import OPEN, Principal
from llmrouter_server.backends.scripted import ScriptedBackend
from llmrouter_server.errors import BackendTimeout
from llmrouter_server.streams.events import Chunk, Event
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.lifecycle import StreamState
from llmrouter_server.telemetry.stats import MAX_GAPS, StatsObserver
from llmrouter_server.telemetry.summary import Latency
from llmrouter_server.values import Usage
from tests.helpers import cancel, error_info, generate, scripted_config, start
from tests.telemetry.stats_serving import script, stats_serving

pytestmark = pytest.mark.timeout(30)

WINDOW = 60.0


class FakeClock:
    """Seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeRouter:
    """The two things the report asks a router: its routes and a name's route."""

    def routes(self) -> list[Any]:
        return [SimpleNamespace(name="fast"), SimpleNamespace(name="slow")]

    def resolve(self, model: str) -> Any:
        return SimpleNamespace(name=model)


def fake_generation(stream_id: str, route: str = "fast") -> Any:
    """The parts of a generation the observer reads."""
    target = SimpleNamespace(model="m", backend=SimpleNamespace(name="b"), name="b/m")
    return SimpleNamespace(
        stream_id=stream_id,
        state=StreamState.QUEUED,
        route=SimpleNamespace(name=route, targets=[target]),
        tally=SimpleNamespace(source=None, usage=Usage()),
        owner=SimpleNamespace(tenant="t"),
        error=None,
    )


class Driver:
    """Runs fake generations through a ``StatsObserver`` on a fake clock."""

    def __init__(self, **options: Any) -> None:
        self.clock = FakeClock()
        self.stats = StatsObserver(WINDOW, clock=self.clock, wall_clock=self.clock, **options)

    def run(
        self,
        stream_id: str,
        chunk_times: list[float],
        end: StreamState = StreamState.COMPLETED,
        *,
        route: str = "fast",
        error: Exception | None = None,
    ) -> None:
        """A generation whose chunks come ``chunk_times`` seconds after its start."""
        generation = fake_generation(stream_id, route)
        observer = self.stats
        observer.state_changed(cast(Generation, generation))
        began = self.clock.now
        for at in chunk_times:
            self.clock.now = began + at
            chunk = Event(stream_id, 0, 0.0, Chunk("x", 1))
            observer.event_added(cast(Generation, generation), chunk)
        generation.state, generation.error = end, error
        generation.tally.usage = Usage(completion_tokens=len(chunk_times))
        observer.state_changed(cast(Generation, generation))

    def report(self, model: str = "", principal: Principal = OPEN) -> Any:
        return self.stats.report(principal, cast(Any, FakeRouter()), model)


def test_percentiles_and_rates_come_exactly_from_the_window_samples() -> None:
    driver = Driver()
    for index in range(10):  # first tokens after 1/8 .. 10/8 s, then one every 1/4 s
        first = (index + 1) / 8  # eighths add up exactly in binary floating point
        driver.run(f"s{index}", [first, first + 0.25, first + 0.5])

    total = driver.report().total

    assert total.time_to_first_token == Latency(
        p50=5 / 8, p90=9 / 8, p95=10 / 8, p99=10 / 8, count=10
    )
    assert total.inter_token == Latency(p50=0.25, p90=0.25, p95=0.25, p99=0.25, count=20)
    assert total.tokens_per_second == 4.0  # 2 tokens after the first in 0.5 s
    assert (total.success_rate, total.counts.completed, total.counts.completion_tokens) == (
        1.0,
        10,
        30,
    )


def test_counts_success_rate_and_errors_follow_the_outcomes() -> None:
    driver = Driver()
    failure = BackendTimeout("b", "no first token in 2 s")
    for index in range(3):
        driver.run(f"ok{index}", [0.1, 0.2])
    driver.run("bad", [0.1], StreamState.FAILED, route="slow", error=failure)
    driver.run("gone", [], StreamState.CANCELLED, route="slow")

    report = driver.report()

    rows = {row.route: row for row in report.per_route}
    assert [row.route for row in report.per_route] == ["fast", "slow"]
    counts = report.total.counts
    assert (counts.created, counts.completed, counts.failed, counts.cancelled) == (5, 3, 1, 1)
    assert report.total.success_rate == 0.6
    assert (rows["fast"].success_rate, rows["slow"].success_rate) == (1.0, 0.0)
    assert [(e.reason, e.count) for e in report.total.errors] == [("BACKEND_TIMEOUT", 1)]
    assert rows["slow"].errors == report.total.errors
    assert rows["fast"].errors == ()


def test_a_running_generation_is_counted_but_not_in_the_window_figures() -> None:
    driver = Driver()
    driver.stats.state_changed(cast(Generation, fake_generation("live")))

    total = driver.report().total

    assert (total.counts.created, total.counts.running) == (1, 1)
    assert (total.recent_completed, total.time_to_first_token.count) == (0, 0)


def test_the_window_drops_old_records_but_keeps_the_counters() -> None:
    driver = Driver()
    driver.run("old", [0.1, 0.2])
    driver.clock.now += WINDOW + 1
    driver.run("new", [0.3, 0.5])

    total = driver.report().total

    assert (total.counts.created, total.counts.completed) == (2, 2)
    assert (total.recent_completed, total.time_to_first_token.count) == (1, 1)
    assert total.time_to_first_token.p50 == pytest.approx(0.3)


def test_the_record_cap_keeps_the_newest_and_says_so() -> None:
    driver = Driver(max_records=2)
    for index in range(3):
        driver.run(f"s{index}", [0.1 * (index + 1)])

    report = driver.report()

    assert report.truncated
    assert report.total.recent_completed == 2
    assert report.total.time_to_first_token.p50 == pytest.approx(0.2)


def test_a_long_generation_keeps_evenly_sampled_gaps() -> None:
    driver = Driver()
    times = [0.001 * n for n in range(1, 1002)]  # 1000 gaps

    driver.run("long", times)

    inter_token = driver.report().total.inter_token
    assert MAX_GAPS // 2 <= inter_token.count <= MAX_GAPS
    assert inter_token.p50 == pytest.approx(0.001)


def test_fastest_and_slowest_are_ordered_by_rate() -> None:
    driver = Driver()
    driver.run("slow", [0.1, 1.1])  # 1 token/s
    driver.run("fast", [0.1, 0.2])  # 10 tokens/s
    driver.run("single", [0.1])  # no rate: left out

    report = driver.report()

    assert [r.stream_id for r in report.fastest] == ["fast", "slow"]
    assert [r.stream_id for r in report.slowest] == ["slow", "fast"]


def test_a_non_admin_is_refused() -> None:
    user = Principal(identity="k1", tenant="t")

    with pytest.raises(Exception, match="only an admin key may call it") as caught:
        Driver().report(principal=user)

    assert type(caught.value).__name__ == "PermissionDenied"


# The RPC on a real server


async def test_get_stats_after_a_known_mix_of_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    async with stats_serving(scripted_config("fake")) as (served, _):
        for _ in range(3):
            await generate(served.stub, start("hello"))
        with pytest.raises(grpc.aio.AioRpcError):
            await generate(served.stub, start("fail"))
        call = served.stub.Generate()
        await call.write(start("stall"))
        while not (await call.read()).event.HasField("chunk"):
            pass
        await call.write(cancel())
        while not (await call.read()).event.HasField("completed"):
            pass

        reply = await served.stub.GetStats(svc_pb.GetStatsRequest(), timeout=5)

    total = reply.total
    assert (
        total.streams_created,
        total.streams_completed,
        total.streams_failed,
        total.streams_cancelled,
        total.streams_running,
    ) == (5, 3, 1, 1, 0)
    assert (total.recent_completed, total.recent_failed, total.recent_cancelled) == (3, 1, 1)
    assert total.success_rate == pytest.approx(0.6)
    assert total.time_to_first_token.count == 5
    assert total.inter_token.count == 9  # three gaps in each completed generation
    assert total.tokens_per_second > 0
    assert [(e.reason, e.code, e.count) for e in total.errors] == [
        ("BACKEND_STATUS", grpc.StatusCode.INVALID_ARGUMENT.value[0], 1)
    ]
    assert [row.model for row in reply.per_model] == ["fake-model"]
    assert reply.per_model[0].streams_created == 5
    assert reply.window.seconds == 300
    assert len(reply.fastest) == 3
    assert {s.route for s in reply.fastest} == {"fake-model"}
    assert [s.completion_tokens for s in reply.fastest] == [4, 4, 4]


async def test_get_stats_of_one_route_and_of_an_unknown_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backends = {name: ScriptedBackend(name, script) for name in ("fake", "other")}
    async with stats_serving(scripted_config("fake", "other"), backends) as (
        served,
        _,
    ):
        await generate(served.stub, start("hello"))

        one = await served.stub.GetStats(svc_pb.GetStatsRequest(model="other-model"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.GetStats(svc_pb.GetStatsRequest(model="nope"), timeout=5)

    assert [row.model for row in one.per_model] == ["other-model"]
    assert one.total.streams_created == 0
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details().startswith(
        "GetStatsRequest.model: unknown model 'nope'; available routes: fake-model, other-model"
    )
    assert error_info(caught.value).metadata["field"] == "GetStatsRequest.model"


def _key(key_id: str, secret: str, role: str) -> dict[str, str]:
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return {"id": key_id, "sha256": digest, "tenant": "team", "role": role}


async def test_get_stats_is_for_admin_keys_only(monkeypatch: pytest.MonkeyPatch) -> None:
    config = scripted_config(
        "fake", auth={"api_keys": [_key("ops", "admin-secret", "admin"), _key("dev", "s", "user")]}
    )
    async with stats_serving(config) as (served, _):
        as_admin = [("authorization", "Bearer admin-secret")]
        reply = await served.stub.GetStats(svc_pb.GetStatsRequest(), metadata=as_admin, timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.GetStats(
                svc_pb.GetStatsRequest(), metadata=[("authorization", "Bearer s")], timeout=5
            )

    assert reply.total.streams_created == 0
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == (
        "GetStats reports on every tenant's generations; only an admin key may call it"
    )
    assert error_info(caught.value).reason == "PERMISSION_DENIED"
