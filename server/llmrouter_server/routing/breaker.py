"""Per-target health: a circuit breaker and the backend's Retry-After.

A circuit is CLOSED while attempts succeed. ``failure_threshold`` failures in
a row open it: the target is skipped. After ``cooldown`` it is HALF_OPEN and
lets exactly one attempt through (the probe): a success closes it, a failure
opens it again, a probe that ends without a verdict (cancelled) lets the next
one through. State is read through an injected clock, so tests drive it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

Clock = Callable[[], float]
"""Monotonic seconds."""


class CircuitState(StrEnum):
    """The state of one target's circuit."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


Observer = Callable[["TargetHealth", CircuitState], None]
"""Told of each state change, with the new state."""


class TargetHealth:
    """The circuit breaker and Retry-After of one target (backend and model)."""

    def __init__(
        self,
        name: str,
        failure_threshold: int,
        cooldown: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.clock = clock
        self.failures = 0
        self.observers: list[Observer] = []
        self._opened_at: float | None = None
        self._probing = False
        self._not_before = 0.0
        self._last_state = CircuitState.CLOSED

    @property
    def state(self) -> CircuitState:
        """The state now (an open circuit turns half-open once cooled down)."""
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self.clock() - self._opened_at < self.cooldown:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    @property
    def not_before(self) -> float:
        """When the backend's Retry-After ends (clock time); past means now."""
        return self._not_before

    @property
    def probing(self) -> bool:
        """True while a half-open circuit's probe is in flight."""
        return self._probing

    def reopens_at(self) -> float | None:
        """When an open circuit lets a probe through; None unless open."""
        if self.state is not CircuitState.OPEN or self._opened_at is None:
            return None
        return self._opened_at + self.cooldown

    def ready_in(self) -> float:
        """Seconds until an attempt may start: 0 now, ``inf`` while another probe decides."""
        if self.available():
            return 0.0
        now = self.clock()
        reopens = self.reopens_at()
        if reopens is not None:
            return max(reopens, self._not_before) - now
        if self.state is CircuitState.HALF_OPEN and self._probing:
            return float("inf")
        return self._not_before - now  # only a Retry-After holds it back

    def available(self) -> bool:
        """True when an attempt may start now (without claiming the probe)."""
        if self.clock() < self._not_before:
            return False
        state = self.state
        return state is CircuitState.CLOSED or (
            state is CircuitState.HALF_OPEN and not self._probing
        )

    def claim(self) -> bool:
        """Takes the right to attempt now; a half-open circuit gives it once."""
        if not self.available():
            return False
        if self.state is CircuitState.HALF_OPEN:
            self._probing = True
        self.refresh()
        return True

    def succeeded(self) -> None:
        """An attempt ended well: the circuit closes."""
        self.failures = 0
        self._opened_at = None
        self._probing = False
        self.refresh()

    def failed(self, retry_after: float | None = None) -> None:
        """An attempt failed; opens the circuit at the threshold or after a probe."""
        self.failures += 1
        if retry_after is not None:
            self._not_before = max(self._not_before, self.clock() + retry_after)
        if self._probing or self.failures >= self.failure_threshold:
            self._opened_at = self.clock()
        self._probing = False
        self.refresh()

    def abandoned(self) -> None:
        """An attempt ended without a verdict (cancelled, released); a probe may go again."""
        self._probing = False

    def refresh(self) -> None:
        """Tells the observers if the state changed since they last heard."""
        state = self.state
        if state is self._last_state:
            return
        self._last_state = state
        for observer in list(self.observers):
            observer(self, state)
