"""What a route run yields, besides deltas: queue positions and attempt notices.

A failed attempt is reported by the ``FailedAttempt`` the error hierarchy
lists in ``RouteFailed``. It and ``FallbackUsed`` are recorded in a
generation's log as they are, so a client sees exactly what routing decided.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmrouter_server.backends.base import Delta
from llmrouter_server.errors import FailedAttempt
from llmrouter_server.routing.route import Target
from llmrouter_server.values import MidStreamAction


@dataclass(frozen=True, slots=True)
class Waiting:
    """The attempt waits for a slot on its target."""

    position: int
    """1 means next in line."""


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """An attempt got a slot and asked its backend for text."""

    target: Target
    """Where the attempt runs."""
    index: int
    """The target's index in the route."""
    attempt: int
    """Counting from 1."""


@dataclass(frozen=True, slots=True)
class FallbackUsed:
    """The generation goes on with a new attempt (possibly on the same target)."""

    from_model: str
    """The model that failed."""
    from_backend: str
    """The backend that failed."""
    to_model: str
    """The model of the new attempt."""
    to_backend: str
    """The backend of the new attempt."""
    to_target: int
    """The new attempt's target index in the route."""
    action: MidStreamAction
    """CONTINUE after the text so far, or RESTART (discard the text so far)."""


@dataclass(frozen=True, slots=True)
class Tagged:
    """A delta from one target of a MERGE route."""

    delta: Delta
    """The delta."""
    target: Target
    """The target that produced it."""
    index: int
    """The target's index in the route."""
    attempt: int
    """The attempt (one per target under MERGE)."""


RouteItem = Waiting | AttemptStarted | FailedAttempt | FallbackUsed | Tagged | Delta
"""Everything a route run yields."""
