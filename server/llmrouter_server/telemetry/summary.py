"""The GetStats report in domain terms, and the arithmetic that builds it.

``StatsObserver`` (``stats.py``) keeps counters since the server started and
one ``StreamRecord`` per generation that finished recently; ``summarize``
turns a route's counters and records into a ``RouteStats``. Percentiles are
exact over the samples the records keep (nearest rank, no sketch).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from llmrouter_server.errors import RouterError
from llmrouter_server.streams.lifecycle import FINISHED, StreamState


@dataclass(slots=True)
class Counts:
    """Counters of one route (or of all) since the server started."""

    created: int = 0
    """Generations started."""
    completed: int = 0
    """Generations that completed normally."""
    failed: int = 0
    """Generations that failed."""
    cancelled: int = 0
    """Generations cancelled."""
    completion_tokens: int = 0
    """Output tokens of the generations that finished."""

    def finish(self, state: StreamState, tokens: int) -> None:
        """Counts a generation that ended in ``state`` after ``tokens`` output tokens."""
        self.completion_tokens += tokens
        if state is StreamState.COMPLETED:
            self.completed += 1
        elif state is StreamState.FAILED:
            self.failed += 1
        else:
            self.cancelled += 1

    @property
    def running(self) -> int:
        """Generations started and not finished yet."""
        return self.created - self.completed - self.failed - self.cancelled


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One generation that finished, as the report needs it."""

    stream_id: str
    """The generation."""
    route: str
    """The route it ran on."""
    model: str
    """The model that produced its final text (its first target's if none did)."""
    backend: str
    """That model's backend."""
    tenant: str
    """The tenant that started it."""
    state: StreamState
    """How it ended: COMPLETED, FAILED or CANCELLED."""
    finished_at: float
    """When it finished, on the observer's monotonic clock."""
    finished_wall: float
    """When it finished, in seconds since the epoch."""
    duration: float
    """Seconds from its start to its end."""
    time_to_first_token: float | None
    """Seconds from its start to its first chunk; None without a chunk."""
    tokens_per_second: float
    """Tokens after the first over the time from the first chunk to the last; 0
    with fewer than two tokens."""
    completion_tokens: int
    """Output tokens over every attempt."""
    gaps: tuple[float, ...]
    """Seconds between consecutive chunks (at most ``MAX_GAPS``, evenly sampled)."""
    error: RouterError | None = None
    """What ended it, when it failed."""


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles of a set of durations, in seconds (all 0 without samples)."""

    p50: float
    """The median."""
    p90: float
    """The 90th percentile."""
    p95: float
    """The 95th percentile."""
    p99: float
    """The 99th percentile."""
    count: int
    """How many samples."""


@dataclass(frozen=True, slots=True)
class ErrorTally:
    """The generations that failed for one reason within the window."""

    reason: str
    """The error's stable reason (its ErrorInfo reason)."""
    count: int
    """How many."""
    latest: RouterError
    """The most recent of those errors."""
    latest_at: float
    """When it ended its generation, in seconds since the epoch."""


@dataclass(frozen=True, slots=True)
class RouteStats:
    """The report of one route, or of all routes (``route`` empty)."""

    route: str
    """The route; empty for the total."""
    counts: Counts
    """Counters since the server started."""
    recent_completed: int
    """Generations that completed within the window."""
    recent_failed: int
    """Generations that failed within the window."""
    recent_cancelled: int
    """Generations cancelled within the window."""
    recent_completion_tokens: int
    """Output tokens of the generations that finished within the window."""
    success_rate: float
    """Completed over finished within the window; 0 when none finished."""
    time_to_first_token: Latency
    """Over the window's generations that produced a chunk."""
    inter_token: Latency
    """Over the gaps between chunks the window's records keep."""
    tokens_per_second: float
    """The mean rate of the window's completed generations with a rate."""
    errors: tuple[ErrorTally, ...]
    """Failures within the window by reason, most frequent first."""


@dataclass(frozen=True, slots=True)
class StatsReport:
    """What GetStats answers."""

    window: float
    """Seconds the recent figures look back."""
    counting_since: float
    """When the counters started, in seconds since the epoch."""
    generated_at: float
    """When the report was made, in seconds since the epoch."""
    total: RouteStats
    """Over every selected route."""
    per_route: tuple[RouteStats, ...]
    """One per selected route."""
    fastest: tuple[StreamRecord, ...]
    """The highest rates among the window's completed generations, fastest first."""
    slowest: tuple[StreamRecord, ...]
    """The lowest rates among the same, slowest first."""
    truncated: bool
    """True when records within the window were dropped for the cap."""


def percentile(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of sorted samples; 0 without samples."""
    if not ordered:
        return 0.0
    rank = max(math.ceil(p / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def latency(samples: Iterable[float]) -> Latency:
    """The percentiles of ``samples``."""
    ordered = sorted(samples)
    return Latency(
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        count=len(ordered),
    )


def summarize(route: str, counts: Counts, records: Sequence[StreamRecord]) -> RouteStats:
    """The report of ``route`` from its counters and its records within the window."""
    by_state = dict.fromkeys(FINISHED, 0)
    for record in records:
        by_state[record.state] += 1
    rates = [r.tokens_per_second for r in _rated(records)]
    return RouteStats(
        route=route,
        counts=counts,
        recent_completed=by_state[StreamState.COMPLETED],
        recent_failed=by_state[StreamState.FAILED],
        recent_cancelled=by_state[StreamState.CANCELLED],
        recent_completion_tokens=sum(r.completion_tokens for r in records),
        success_rate=by_state[StreamState.COMPLETED] / len(records) if records else 0.0,
        time_to_first_token=latency(
            r.time_to_first_token for r in records if r.time_to_first_token is not None
        ),
        inter_token=latency(gap for r in records for gap in r.gaps),
        tokens_per_second=sum(rates) / len(rates) if rates else 0.0,
        errors=errors(records),
    )


def errors(records: Iterable[StreamRecord]) -> tuple[ErrorTally, ...]:
    """The failed records by reason, most frequent first (then by reason)."""
    tallies: dict[str, ErrorTally] = {}
    for record in records:  # oldest first: the last one seen is the latest
        error = record.error
        if record.state is not StreamState.FAILED or error is None:
            continue
        seen = tallies.get(error.reason)
        count = seen.count + 1 if seen else 1
        tallies[error.reason] = ErrorTally(error.reason, count, error, record.finished_wall)
    return tuple(sorted(tallies.values(), key=lambda t: (-t.count, t.reason)))


def extremes(
    records: Iterable[StreamRecord], count: int
) -> tuple[tuple[StreamRecord, ...], tuple[StreamRecord, ...]]:
    """The ``count`` fastest (fastest first) and slowest (slowest first) rated records."""
    ordered = sorted(_rated(records), key=lambda r: r.tokens_per_second)
    return tuple(reversed(ordered[-count:])), tuple(ordered[:count])


def _rated(records: Iterable[StreamRecord]) -> list[StreamRecord]:
    """Completed records with a rate (at least two tokens over some time)."""
    return [r for r in records if r.state is StreamState.COMPLETED and r.tokens_per_second > 0]
