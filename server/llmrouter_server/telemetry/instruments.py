"""The router's metric instruments: names, units, labels and bucket boundaries.

Names follow OpenTelemetry (dots); the Prometheus exporter turns them into
``llmrouter_streams_completed_total``, ``llmrouter_time_to_first_token_seconds``
and so on. Every instrument is made once per server, from its own meter.

Labels (attributes): ``route`` is the route's name; ``backend`` the backend
of the attempt concerned (for a stream's outcome: the last attempt's, or the
first target's when none started). Histograms have explicit boundaries in
seconds suited to LLM latencies: first tokens in tens of milliseconds to a
minute (a cold model, a long queue), gaps between tokens in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Histogram, Meter, UpDownCounter

TTFT_BUCKETS = (
    0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0,
)  # fmt: skip
"""Seconds to the first token."""

INTER_TOKEN_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
    0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
"""Seconds per token between chunks."""

QUEUE_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
"""Seconds waiting for admission and a backend slot."""


@dataclass(frozen=True, slots=True)
class Instruments:
    """The synchronous instruments (the observable ones are ``metrics.py``'s: they
    read what the observer keeps)."""

    started: Counter
    completed: Counter
    failed: Counter
    cancelled: Counter
    time_to_first_token: Histogram
    inter_token: Histogram
    queue_wait: Histogram
    queued: UpDownCounter
    active: UpDownCounter
    attempts: Counter
    attempt_failures: Counter
    fallbacks: Counter

    @classmethod
    def create(cls, meter: Meter) -> Instruments:
        """Makes the instruments on ``meter``."""
        counter, gauge = meter.create_counter, meter.create_up_down_counter
        return cls(
            started=counter(
                "llmrouter.streams.started",
                description="Generations started {route, backend: the first target's}.",
            ),
            completed=counter(
                "llmrouter.streams.completed",
                description="Generations that completed {route, backend}.",
            ),
            failed=counter(
                "llmrouter.streams.failed",
                description="Generations that failed {route, backend, reason}.",
            ),
            cancelled=counter(
                "llmrouter.streams.cancelled",
                description="Generations cancelled {route, backend, cancelled_by}.",
            ),
            time_to_first_token=meter.create_histogram(
                "llmrouter.time_to_first_token",
                unit="s",
                description="Seconds from a generation's start to its first chunk "
                "{route, backend}.",
                explicit_bucket_boundaries_advisory=TTFT_BUCKETS,
            ),
            inter_token=meter.create_histogram(
                "llmrouter.inter_token_latency",
                unit="s",
                description="Seconds per token between consecutive chunks, one sample per chunk "
                "after the first; gaps spanning a pause are left out {route, backend}.",
                explicit_bucket_boundaries_advisory=INTER_TOKEN_BUCKETS,
            ),
            queue_wait=meter.create_histogram(
                "llmrouter.queue_wait",
                unit="s",
                description="Seconds from a generation's start to its first attempt {route}.",
                explicit_bucket_boundaries_advisory=QUEUE_BUCKETS,
            ),
            queued=gauge(
                "llmrouter.streams.queued",
                description="Generations waiting for their first attempt {route}.",
            ),
            active=gauge(
                "llmrouter.streams.active",
                description="Generations running or paused {route}.",
            ),
            attempts=counter(
                "llmrouter.attempts",
                description="Attempts started (retries, fallbacks, race contenders) "
                "{route, backend}.",
            ),
            attempt_failures=counter(
                "llmrouter.attempt_failures",
                description="Attempts failed {route, backend, reason}.",
            ),
            fallbacks=counter(
                "llmrouter.fallbacks",
                description="Moves to another attempt after a failure "
                "{route, backend: the failed one, to_backend, action}.",
            ),
        )
