"""The per-target circuit breaker and Retry-After, driven by a fake clock."""

from __future__ import annotations

import pytest

from llmrouter_server.routing.breaker import CircuitState, TargetHealth


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock: FakeClock) -> TargetHealth:
    return TargetHealth("fake/m", failure_threshold=3, cooldown=30.0, clock=clock)


@pytest.fixture
def changes(health: TargetHealth) -> list[CircuitState]:
    """Every state change the health's observer is told of, in order."""
    seen: list[CircuitState] = []
    health.observers.append(lambda told, state: seen.append(state))
    return seen


def _open(health: TargetHealth) -> None:
    for _ in range(health.failure_threshold):
        health.failed()


def test_new_target_is_closed_and_available(health: TargetHealth) -> None:
    assert (health.state, health.available(), health.failures) == (CircuitState.CLOSED, True, 0)


def test_circuit_opens_at_the_threshold_of_failures_in_a_row(health: TargetHealth) -> None:
    health.failed()
    health.failed()
    assert (health.state, health.available(), health.failures) == (CircuitState.CLOSED, True, 2)

    health.failed()

    assert (health.state, health.available(), health.failures) == (CircuitState.OPEN, False, 3)
    assert health.claim() is False


def test_success_in_between_resets_the_count(health: TargetHealth) -> None:
    health.failed()
    health.failed()
    health.succeeded()
    health.failed()
    health.failed()

    assert (health.state, health.failures) == (CircuitState.CLOSED, 2)

    health.failed()

    assert health.state is CircuitState.OPEN


def test_open_circuit_turns_half_open_exactly_after_the_cooldown(
    health: TargetHealth, clock: FakeClock
) -> None:
    _open(health)
    assert health.reopens_at() == 130.0

    clock.advance(29.5)
    assert (health.state, health.available()) == (CircuitState.OPEN, False)

    clock.now = 130.0

    assert (health.state, health.available(), health.reopens_at()) == (
        CircuitState.HALF_OPEN, True, None
    )  # fmt: skip


def test_half_open_circuit_lets_exactly_one_probe_through(
    health: TargetHealth, clock: FakeClock
) -> None:
    _open(health)
    clock.advance(30.0)

    assert health.claim() is True
    assert (health.probing, health.available(), health.claim()) == (True, False, False)
    assert health.state is CircuitState.HALF_OPEN


def test_closed_circuit_lets_every_claim_through(health: TargetHealth) -> None:
    assert [health.claim() for _ in range(3)] == [True, True, True]
    assert health.probing is False


def test_successful_probe_closes_the_circuit(health: TargetHealth, clock: FakeClock) -> None:
    _open(health)
    clock.advance(30.0)
    health.claim()

    health.succeeded()

    assert (health.state, health.probing, health.failures) == (CircuitState.CLOSED, False, 0)
    assert [health.claim(), health.claim()] == [True, True]


def test_failed_probe_reopens_with_a_fresh_cooldown(health: TargetHealth, clock: FakeClock) -> None:
    _open(health)
    clock.advance(45.0)  # half-open since 130; the probe fails at 145
    health.claim()

    health.failed()

    assert (health.state, health.probing, health.reopens_at()) == (
        CircuitState.OPEN, False, 175.0
    )  # fmt: skip
    clock.now = 174.9
    assert (health.state, health.claim()) == (CircuitState.OPEN, False)
    clock.now = 175.0
    assert (health.state, health.claim()) == (CircuitState.HALF_OPEN, True)


def test_abandoned_probe_lets_another_probe_through(health: TargetHealth, clock: FakeClock) -> None:
    _open(health)
    clock.advance(30.0)
    health.claim()

    health.abandoned()

    assert (health.state, health.probing, health.available()) == (
        CircuitState.HALF_OPEN, False, True
    )  # fmt: skip
    assert [health.claim(), health.claim()] == [True, False]


def test_retry_after_holds_a_closed_target_back_until_it_ends(
    health: TargetHealth, clock: FakeClock
) -> None:
    health.failed(retry_after=2)

    assert (health.state, health.not_before, health.available()) == (
        CircuitState.CLOSED, 102.0, False
    )  # fmt: skip
    assert health.claim() is False
    clock.now = 101.9
    assert health.available() is False
    clock.now = 102.0
    assert (health.state, health.available(), health.claim()) == (CircuitState.CLOSED, True, True)


def test_a_shorter_retry_after_does_not_cut_a_longer_one(
    health: TargetHealth, clock: FakeClock
) -> None:
    health.failed(retry_after=10)
    clock.advance(1.0)

    health.failed(retry_after=2)

    assert health.not_before == 110.0


def test_retry_after_outlasting_the_cooldown_holds_the_probe_back(
    health: TargetHealth, clock: FakeClock
) -> None:
    health.failed()
    health.failed()
    health.failed(retry_after=40)  # opens at 100; half-open at 130; Retry-After ends at 140

    clock.now = 130.0
    assert (health.state, health.available()) == (CircuitState.HALF_OPEN, False)
    clock.now = 140.0
    assert (health.available(), health.claim()) == (True, True)


def test_observers_hear_each_state_change_once(
    health: TargetHealth, clock: FakeClock, changes: list[CircuitState]
) -> None:
    health.failed()
    health.failed()
    assert changes == []

    health.failed()
    health.failed()  # already open: no change
    assert changes == [CircuitState.OPEN]

    clock.advance(30.0)
    assert changes == [CircuitState.OPEN]  # the turn to half-open is lazy
    health.refresh()
    health.refresh()
    assert changes == [CircuitState.OPEN, CircuitState.HALF_OPEN]

    health.claim()
    health.failed()
    clock.advance(30.0)
    health.claim()  # reports the lazy half-open itself
    health.succeeded()
    health.succeeded()

    assert changes == [
        CircuitState.OPEN, CircuitState.HALF_OPEN,
        CircuitState.OPEN, CircuitState.HALF_OPEN,
        CircuitState.CLOSED,
    ]  # fmt: skip


def test_every_observer_is_told_with_the_health_that_changed(
    health: TargetHealth,
) -> None:
    told: list[tuple[str, TargetHealth, CircuitState]] = []
    health.observers.append(lambda h, state: told.append(("metrics", h, state)))
    health.observers.append(lambda h, state: told.append(("watch", h, state)))

    _open(health)

    assert told == [
        ("metrics", health, CircuitState.OPEN),
        ("watch", health, CircuitState.OPEN),
    ]


def test_retry_after_alone_is_no_state_change(
    health: TargetHealth, clock: FakeClock, changes: list[CircuitState]
) -> None:
    health.failed(retry_after=5)
    clock.advance(5.0)
    health.refresh()

    assert changes == []
