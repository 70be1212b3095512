"""The order in which one round tries a route's targets."""

from __future__ import annotations

import random

import pytest

from llmrouter_server.backends.scripted import ScriptedBackend
from llmrouter_server.routing.breaker import TargetHealth
from llmrouter_server.routing.order import round_order
from llmrouter_server.routing.route import Route, Target
from llmrouter_server.routing.slots import Slots
from llmrouter_server.values import RoutePolicy

SEEDS = [0, 1, 2, 3, 42, 2024]
ROUNDS = 1000


def _route(*weights: int) -> Route:
    """A route with one target per weight, on backends named b0, b1, ..."""
    targets = []
    for index, weight in enumerate(weights):
        backend = ScriptedBackend(f"b{index}", [])
        targets.append(Target(backend, "m", Slots(1), TargetHealth(f"b{index}/m", 5, 30.0), weight))
    return Route("r", tuple(targets))


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - seeded, so a failure can be replayed


@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_first_pick_follows_the_weights(seed: int) -> None:
    """Weights 1 and 3: the weight-3 target starts a round with probability 0.75.

    Over 1,000 rounds the count is binomial: mean 750, sigma =
    sqrt(1000 * 0.75 * 0.25) ~= 13.7. The accepted range is 750 +/- 5 sigma,
    [682, 818]; a correct sampler falls outside it about once in 1.7 million seeds.
    """
    route = _route(1, 3)
    rng = _rng(seed)

    firsts = [round_order(route, RoutePolicy.WEIGHTED, rng)[0] for _ in range(ROUNDS)]

    assert 682 <= firsts.count(1) <= 818
    assert firsts.count(0) + firsts.count(1) == ROUNDS


@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_rounds_are_permutations(seed: int) -> None:
    route = _route(1, 3, 2, 5)
    rng = _rng(seed)

    orders = [round_order(route, RoutePolicy.WEIGHTED, rng) for _ in range(200)]

    assert all(sorted(order) == [0, 1, 2, 3] for order in orders)
    assert len({tuple(order) for order in orders}) > 1


@pytest.mark.parametrize("seed", SEEDS)
def test_weight_zero_targets_come_last_in_configured_order(seed: int) -> None:
    route = _route(0, 2, 0, 1, 0)
    rng = _rng(seed)

    orders = [round_order(route, RoutePolicy.WEIGHTED, rng) for _ in range(200)]

    assert all(sorted(order[:2]) == [1, 3] and order[2:] == [0, 2, 4] for order in orders)
    assert {tuple(order[:2]) for order in orders} == {(1, 3), (3, 1)}


def test_only_weight_zero_targets_keep_configured_order() -> None:
    route = _route(0, 0, 0)

    assert round_order(route, RoutePolicy.WEIGHTED, _rng(0)) == [0, 1, 2]


@pytest.mark.parametrize("policy", [RoutePolicy.FALLBACK, RoutePolicy.RACE])
def test_fallback_and_race_keep_configured_order(policy: RoutePolicy) -> None:
    route = _route(1, 3, 0, 2)
    rng = _rng(7)

    orders = [round_order(route, policy, rng) for _ in range(50)]

    assert orders == [[0, 1, 2, 3]] * 50
