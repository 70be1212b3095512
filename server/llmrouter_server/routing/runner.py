"""The attempt loop of one generation over its route (FALLBACK, WEIGHTED, RACE).

A retryable failure moves on to the next target of the round at once; once
every target had its turn, a new round starts after an exponential backoff
with full jitter, never sooner than a target's Retry-After or circuit allow.
All within ``max_attempts`` and the caller's deadline. After a failure with
text already produced, the route's mid-stream action decides: CONTINUE (the
next attempt continues after the transcript's text), RESTART (the text is
discarded) or FAIL.

A backend queue with no place for a new generation (``max_queued``, or its
tenant's ``queue_share``) refuses its first attempt with RESOURCE_EXHAUSTED,
which ends the run before any text: it is admission, not a backend failure,
so the circuit does not hear of it, no ``attempt_failed`` is recorded, and
FALLBACK does not move on to the next target (fallbacks are for failures; an
overload spilled onto them would take them down too). The caller retries.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.errors import (
    BackendError,
    BackendStalled,
    FailedAttempt,
    RouteFailed,
    Unavailable,
)
from llmrouter_server.routing.attempt import AttemptItem, attempt
from llmrouter_server.routing.breaker import CircuitState, TargetHealth
from llmrouter_server.routing.items import AttemptStarted, FallbackUsed, RouteItem
from llmrouter_server.routing.order import round_order
from llmrouter_server.routing.route import Plan, Route
from llmrouter_server.routing.transcript import Transcript
from llmrouter_server.values import MidStreamAction, RoutePolicy

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Step:
    index: int
    delay: float


class Run:
    """Runs one generation's attempts over a route; iterate ``items()``."""

    def __init__(  # noqa: PLR0913 - a run is all of these
        self,
        route: Route,
        plan: Plan,
        request: BackendRequest,
        transcript: Transcript,
        *,
        stream_id: str = "",
        rng: random.Random | None = None,
    ) -> None:
        self.route = route
        self.plan = plan
        self.request = request
        self.transcript = transcript
        self.stream_id = stream_id
        self.rng = rng or random.Random()  # noqa: S311 - jitter and weights, not secrets
        self.index = 0
        self.number = transcript.attempts
        self._fresh = not transcript.segments
        self._round = 1
        self._order: list[int] = []
        self._position = 0

    def attempt(self, index: int, number: int, lane: int = 0) -> AsyncGenerator[AttemptItem, None]:
        """Attempt ``number`` on target ``index`` (for the policies built on a run).

        Only a new generation's first attempt (each lane's, under MERGE) is
        held to a backend queue's bound and share: later ones (retries, RACE
        contenders, continuations) belong to a generation already admitted,
        which a full queue must not drop mid-answer; they add at most one
        place per lane of a running generation.
        """
        first = number == 1 or self.plan.policy is RoutePolicy.MERGE
        return attempt(
            self.route.targets[index], index, number, self.request, self.plan,
            self.transcript, lane=lane, stream_id=self.stream_id, checked=self._fresh and first,
        )  # fmt: skip

    async def items(self) -> AsyncGenerator[RouteItem, None]:
        """Yields route items until a target finishes the generation.

        Raises:
            RouteFailed: A failure allowed no further attempt.
            Unavailable: No target can be tried (every circuit open).
        """
        await self._first()
        while True:
            try:
                async with aclosing(self._current()) as items:
                    async for item in items:
                        self._passing(item)
                        yield item
            except BackendError as error:
                step = self._next_step(error)
                delay = step.delay if step else 0.0
                then = self.route.targets[step.index].name if step else ""
                yield self.failed(error, will_retry=step is not None, delay=delay, then=then)
                if step is None:
                    raise self.route_failed() from None
                if step.delay:
                    await asyncio.sleep(step.delay)
                yield self._move_to(step.index)
            else:
                return

    def failed(
        self,
        error: BackendError,
        *,
        will_retry: bool,
        delay: float,
        lane: int = 0,
        then: str = "",
    ) -> FailedAttempt:
        """Records the failure of the current attempt; the item that reports it.

        Args:
            error: The failure.
            will_retry: Another attempt follows.
            delay: Seconds before it.
            lane: The MERGE lane that failed.
            then: The target of the next attempt, for the log.
        """
        target = self.route.targets[self.index]
        tokens = sum(s.tokens for s in self.transcript.segments if s.attempt == self.number)
        # A stall says when itself; a refusal (not retryable) is not about when.
        plain = isinstance(error, BackendStalled) or not error.retryable
        reason = error.detail if plain else _when(error.detail, tokens)
        error.message = f"backend {error.backend!r}: {reason}"
        # Kept with the generation after it ends: not the frames it was raised in.
        error.__traceback__ = None
        failure = FailedAttempt(
            self.number, self.index, target.model, reason, tokens, error, will_retry, delay,
            time.time(),
        )  # fmt: skip
        self.transcript.fail(failure, lane)
        next_move = "no further attempt"
        if will_retry:
            next_move = f"next attempt {('on ' + then + ' ') if then else ''}in {delay:.2f} s"
        logger.warning(
            "stream %s: attempt %d on %s failed: %s; %s",
            self.stream_id, self.number, target.name, reason, next_move,
            extra={
                "stream_id": self.stream_id, "route": self.route.name, "model": target.model,
                "target": target.name, "attempt": self.number, "error_reason": error.reason,
                "will_retry": will_retry, "retry_delay_seconds": round(delay, 3),
                "next_target": then,
            },
        )  # fmt: skip
        return failure

    def _passing(self, item: RouteItem) -> None:
        """Records what goes on to the generation: the text, the current target."""
        if isinstance(item, Delta):
            self.transcript.extend(item)
        elif isinstance(item, AttemptStarted):
            self.transcript.target = item.index

    def has_next_in_round(self) -> bool:
        """True when a target later in this round is ready now."""
        targets = self.route.targets
        return any(targets[i].health.available() for i in self._order[self._position :])

    def take_next_in_round(self) -> int:
        """The next target of this round that is ready now (``has_next_in_round`` first)."""
        while True:
            index = self._order[self._position]
            self._position += 1
            if self.route.targets[index].health.available():
                return index

    def _current(self) -> AsyncGenerator[RouteItem, None]:
        if self.plan.policy is RoutePolicy.RACE and not self.transcript.text():
            from llmrouter_server.routing.race import race

            return race(self)
        return self.attempt(self.index, self.number)

    async def _first(self) -> None:
        """Picks the first attempt: the target of a released stream, else the first ready."""
        self._order = round_order(self.route, self.plan.policy, self.rng)
        if self.transcript.attempts and self.transcript.target is not None:
            # A continuation after a release: same attempt, same target.
            self.index = self.transcript.target
            self._position = self._order.index(self.index) + 1
            return
        step = self._new_round(delay=0.0, first=True)
        if step is None or step.delay:
            # Nothing can start now: say when instead of waiting in silence.
            raise self._nothing_ready(step.delay if step else None)
        self.index, self.number = step.index, 1

    def _move_to(self, index: int) -> FallbackUsed:
        failed = self.route.targets[self.index]
        target = self.route.targets[index]
        action = MidStreamAction.CONTINUE
        if self.transcript.text() and self.plan.on_mid_stream_failure is MidStreamAction.RESTART:
            action = MidStreamAction.RESTART
            self.transcript.restart()
        self.index, self.number = index, self.number + 1
        return FallbackUsed(
            from_model=failed.model,
            from_backend=failed.backend.name,
            to_model=target.model,
            to_backend=target.backend.name,
            to_target=index,
            action=action,
        )

    def _next_step(self, error: BackendError) -> _Step | None:
        if not error.retryable or self.number >= self.plan.max_attempts:
            return None
        mid_stream = bool(self.transcript.text())
        if mid_stream and self.plan.on_mid_stream_failure is MidStreamAction.FAIL:
            return None
        if self.has_next_in_round():
            return _Step(self.take_next_in_round(), 0.0)
        self._round += 1
        cap = self.plan.backoff.cap(self._round - 1)
        return self._new_round(delay=self.rng.uniform(0, cap))

    def _new_round(self, delay: float, *, first: bool = False) -> _Step | None:
        """The first target of a new round that is ready within ``delay`` (or the earliest)."""
        if not first:
            self._order = round_order(self.route, self.plan.policy, self.rng)
        targets = self.route.targets
        ready = [(_ready_in(targets[index].health, first=first), position)
                 for position, index in enumerate(self._order)]  # fmt: skip
        timely = [item for item in ready if item[0] <= delay]
        candidates = timely or sorted(item for item in ready if item[0] != float("inf"))
        if not candidates:
            return None
        ready_in, position = min(candidates, key=lambda item: (item[0] > delay, item[1]))
        wait = max(delay, ready_in)
        deadline = self.plan.deadline
        if deadline is not None and time.monotonic() + wait >= deadline:
            return None
        self._position = position + 1
        return _Step(self._order[position], wait)

    def route_failed(self) -> RouteFailed:
        """The error that ends the run after its last failure."""
        failures = self.transcript.failures
        count = len(failures)
        last = failures[-1].error.message
        message = f"route {self.route.name!r}: {last}"
        if count > 1:
            message = f"route {self.route.name!r}: {count} attempts failed; the last: {last}"
        return RouteFailed(message, tuple(failures))

    def _nothing_ready(self, wait: float | None) -> Unavailable:
        if all(t.health.state is CircuitState.OPEN for t in self.route.targets):
            why = "every target's circuit is open after repeated failures"
        else:
            why = "no target can take a generation now (open circuits, Retry-After)"
        return Unavailable(f"route {self.route.name!r}: {why}", retry_after=wait)


def _ready_in(health: TargetHealth, *, first: bool) -> float:
    """Seconds until a target may be tried. A retry waits for a Retry-After, never
    for an open circuit's cooldown (that can be long): such a target is out of the
    round. Only a new generation is told when its circuit lets a probe through."""
    if not first and health.state is CircuitState.OPEN:
        return float("inf")
    return health.ready_in()


def _when(detail: str, tokens: int) -> str:
    if tokens == 0:
        return f"{detail} before the first token"
    return f"{detail} after {tokens} token{'s' if tokens != 1 else ''}"
