"""Routes as data: targets, the settings of a route, and one request's plan.

A ``Plan`` is the route's settings after a request's overrides, which may
only tighten them (``tighten`` says why a value is refused, naming the field).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from llmrouter_server.backends.base import Backend
from llmrouter_server.config import MAX_TIMEOUT_SECONDS, RouteConfig
from llmrouter_server.errors import InvalidArgument
from llmrouter_server.routing.breaker import TargetHealth
from llmrouter_server.routing.slots import ANYONE, QueueClaim, Slots
from llmrouter_server.values import MidStreamAction, RoutePolicy


@dataclass(frozen=True, slots=True)
class Target:
    """One backend and the model to ask it for."""

    backend: Backend
    """The backend."""
    model: str
    """The model name the backend knows."""
    slots: Slots
    """The backend's concurrency limit, shared by every target on it."""
    health: TargetHealth
    """The target's circuit breaker and Retry-After, shared by every route using it."""
    weight: int = 1
    """Relative share under WEIGHTED."""

    @property
    def name(self) -> str:
        """``backend/model``, for logs and messages."""
        return f"{self.backend.name}/{self.model}"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter between rounds over the targets."""

    initial: float = 0.2
    """The cap of the first wait, in seconds."""
    maximum: float = 5.0
    """The cap never exceeds this."""
    multiplier: float = 2.0
    """The cap grows by this factor each round."""

    def cap(self, round_: int) -> float:
        """The longest wait before round ``round_`` (the second round is 1)."""
        return float(min(self.maximum, self.initial * self.multiplier ** (round_ - 1)))


@dataclass(frozen=True, slots=True)
class Plan:
    """How one generation uses its route."""

    policy: RoutePolicy = RoutePolicy.FALLBACK
    """How targets are used."""
    max_attempts: int = 3
    """Attempts over all targets."""
    backoff: Backoff = Backoff()
    """Waits between rounds."""
    first_token_timeout: float | None = None
    """Seconds an attempt may take to its first token; None is no limit."""
    idle_timeout: float | None = None
    """Seconds an attempt may be silent after a token; None is no limit."""
    race_after: float = 2.0
    """RACE: seconds before the next target starts."""
    on_mid_stream_failure: MidStreamAction = MidStreamAction.CONTINUE
    """What a failure after text leads to."""
    deadline: float | None = None
    """The caller's deadline (``time.monotonic``); no retry waits past it."""
    queue: QueueClaim = ANYONE
    """Whose generation it is: the share of a backend's queue its first attempt may join."""


@dataclass(frozen=True, slots=True)
class Overrides:
    """A request's changes to its route's plan; None keeps the route's value."""

    policy: RoutePolicy | None = None
    """Another policy."""
    first_token_timeout: float | None = None
    """A shorter first-token timeout."""
    idle_timeout: float | None = None
    """A shorter idle timeout."""
    max_attempts: int | None = None
    """Fewer attempts."""
    on_mid_stream_failure: MidStreamAction | None = None
    """FAIL, or the route's action."""
    race_after: float | None = None
    """A later race start."""


@dataclass(frozen=True, slots=True)
class Route:
    """A named, ordered list of targets and how to use them."""

    name: str
    """What clients put in ``model``."""
    targets: tuple[Target, ...]
    """Targets in order."""
    plan: Plan = Plan()
    """The route's own settings."""


def plan_of(config: RouteConfig) -> Plan:
    """The plan a route's configuration describes."""
    return Plan(
        policy=config.policy,
        max_attempts=config.max_attempts,
        backoff=Backoff(
            config.retry.initial_backoff_seconds,
            config.retry.max_backoff_seconds,
            config.retry.multiplier,
        ),
        first_token_timeout=config.first_token_timeout_seconds,
        idle_timeout=config.idle_timeout_seconds,
        race_after=config.race_after_seconds,
        on_mid_stream_failure=config.on_mid_stream_failure,
    )


_SEVERAL_AT_ONCE = frozenset({RoutePolicy.RACE, RoutePolicy.MERGE})


def tighten(plan: Plan, overrides: Overrides, deadline: float | None) -> Plan:
    """The plan with a request's overrides applied.

    Raises:
        InvalidArgument: An override loosens the route, naming the field.
    """
    field = "start.routing."
    policy = overrides.policy
    if policy is not None and policy in _SEVERAL_AT_ONCE and policy is not plan.policy:
        raise InvalidArgument(
            field + "policy",
            f"{policy.upper()} runs several targets at once; this route's policy is "
            f"{plan.policy.upper()} (FALLBACK or WEIGHTED may be asked for)",
        )
    action = overrides.on_mid_stream_failure
    fails = plan.on_mid_stream_failure is MidStreamAction.FAIL
    if action is not None and action is not MidStreamAction.FAIL and fails:
        raise InvalidArgument(
            field + "on_mid_stream_failure", "this route fails mid-stream; only FAIL is allowed"
        )
    return replace(
        plan,
        policy=policy or plan.policy,
        max_attempts=_at_most(field + "max_attempts", overrides.max_attempts, plan.max_attempts),
        first_token_timeout=_shorter(
            field + "first_token_timeout", overrides.first_token_timeout, plan.first_token_timeout
        ),
        idle_timeout=_shorter(field + "idle_timeout", overrides.idle_timeout, plan.idle_timeout),
        race_after=_later(field + "race_after", overrides.race_after, plan.race_after),
        on_mid_stream_failure=action or plan.on_mid_stream_failure,
        deadline=deadline,
    )


def _at_most(field: str, value: int | None, limit: int) -> int:
    if value is None:
        return limit
    if not 1 <= value <= limit:
        raise InvalidArgument(field, f"must be between 1 and the route's {limit}")
    return value


def _shorter(field: str, value: float | None, limit: float | None) -> float | None:
    if value is None:
        return limit
    if value <= 0:
        raise InvalidArgument(field, "must be positive")
    if limit is not None and value > limit:
        raise InvalidArgument(field, f"{value:g} s is longer than the route's {limit:g} s")
    if limit is None and value > MAX_TIMEOUT_SECONDS:
        raise InvalidArgument(field, f"must be at most {MAX_TIMEOUT_SECONDS:g} s")
    return value


def _later(field: str, value: float | None, floor: float) -> float:
    if value is None:
        return floor
    if not floor <= value <= MAX_TIMEOUT_SECONDS:
        raise InvalidArgument(
            field, f"must be between the route's {floor:g} s and {MAX_TIMEOUT_SECONDS:g} s"
        )
    return value
