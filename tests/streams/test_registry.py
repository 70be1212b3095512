"""The registry keeps finished generations for a time and within a byte budget."""

from __future__ import annotations

import pytest

from llmrouter_server.auth.principal import OPEN
from llmrouter_server.backends.scripted import ScriptedBackend, words
from llmrouter_server.config import Config
from llmrouter_server.errors import AlreadyExists, NotFound
from llmrouter_server.routing.router import Router, build_router
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.log import Window
from llmrouter_server.streams.registry import StreamRegistry
from llmrouter_server.streams.request import Flow, GenerationRequest
from llmrouter_server.streams.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def router() -> Router:
    config = Config(
        backends={"fake": {"kind": "openai", "api_key_env": None}},
        routes={"r": {"targets": [{"backend": "fake", "model": "m"}]}},
        default_route="r",
    )
    return build_router(config, {"fake": ScriptedBackend("fake", words("one two three"))})


async def _finished(router: Router, registry: StreamRegistry, stream_id: str) -> Generation:
    settings = Settings(max_tokens=10, window=Window(), retain_bytes=10_000, release_after=60)
    route = router.resolve("")
    generation = Generation(
        stream_id, GenerationRequest(prompt="x"), settings, route, route.plan, router, OPEN
    )
    registry.add(generation)
    generation.open_owner(0, Flow()).close()
    generation.start()
    await generation.wait()
    return generation


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_finished_generations_expire_after_the_retention_time(
    router: Router, clock: Clock
) -> None:
    registry = StreamRegistry(retain_seconds=60, retain_total_bytes=10**9, clock=clock)
    generation = await _finished(router, registry, "a")
    generation.finished_at = clock.now

    clock.now += 59
    assert registry.get(OPEN, "a") is generation
    clock.now += 2
    registry.prune()

    with pytest.raises(NotFound, match="finished more than 60 s ago"):
        registry.get(OPEN, "a")


async def test_oldest_finished_generations_go_first_over_the_byte_budget(
    router: Router, clock: Clock
) -> None:
    first = await _finished(router, StreamRegistry(60, 10**9, clock), "probe")
    budget = first.retained_bytes * 2
    registry = StreamRegistry(retain_seconds=60, retain_total_bytes=budget, clock=clock)

    for name in ("a", "b", "c"):
        (await _finished(router, registry, name)).finished_at = clock.now

    assert [s.stream_id for s in registry.statuses(OPEN)] == ["c", "b"]


async def test_a_retained_stream_id_cannot_be_reused(router: Router, clock: Clock) -> None:
    registry = StreamRegistry(retain_seconds=60, retain_total_bytes=10**9, clock=clock)
    await _finished(router, registry, "a")

    with pytest.raises(AlreadyExists):
        await _finished(router, registry, "a")


async def test_the_retained_total_counts_each_kept_generation_once(
    router: Router, clock: Clock
) -> None:
    registry = StreamRegistry(retain_seconds=60, retain_total_bytes=10**9, clock=clock)
    kept = [await _finished(router, registry, name) for name in ("a", "b", "c")]
    for generation in kept:
        generation.finished_at = clock.now

    assert registry.retained_bytes == sum(g.retained_bytes for g in kept)
    assert kept[0].retained_bytes > kept[0].log.retained_bytes  # the request and objects count
    clock.now += 61
    registry.prune()
    assert registry.retained_bytes == 0
