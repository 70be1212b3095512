"""What one identity uses of its limits: generations admitted, requests, output tokens.

``requests_per_minute`` and ``output_tokens_per_minute`` are token buckets: a
bucket holds up to a minute's worth and refills continuously (capacity / 60
per second), so a full bucket allows a burst of one minute's worth and then
the steady rate. A generation takes one request and reserves its output
tokens when it is admitted; when it ends, ``settle`` gives back what it did
not use. One that used more than it reserved (a RESTART after a failure
mid-answer counts both attempts) leaves the bucket in debt, which later
requests wait out: over any stretch of time an identity gets at most a
bucket plus the refill.

Reading the time through an injected clock keeps this module pure: tests
drive the refill.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from llmrouter_server.config import IdentityLimits
from llmrouter_server.errors import InvalidArgument, ResourceExhausted

Clock = Callable[[], float]
"""Monotonic seconds."""

PERIOD = 60.0
"""Seconds a bucket takes to refill from empty: the limits are per minute."""

_EPSILON = 1e-9
"""Float slack: a bucket this close to the amount has it."""


class TokenBucket:
    """Up to ``capacity`` tokens, refilled continuously at ``capacity / period`` per second."""

    def __init__(self, capacity: int, period: float = PERIOD, clock: Clock = time.monotonic):
        self.capacity = capacity
        self.period = period
        self._clock = clock
        self._level = float(capacity)
        self._at = clock()

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self.capacity / self.period

    def level(self) -> float:
        """Tokens there now (negative while in debt)."""
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._at) * self.rate)
        self._at = now
        return self._level

    def wait(self, amount: float) -> float:
        """Seconds until ``amount`` tokens are there; 0 when they are now."""
        missing = amount - self.level()
        return 0.0 if missing <= _EPSILON else missing / self.rate

    def take(self, amount: float) -> None:
        """Removes ``amount`` tokens (``wait`` says when they are there)."""
        self._level = self.level() - amount

    def give(self, amount: float) -> None:
        """Adds ``amount`` tokens, never beyond capacity; a negative amount is a debt."""
        self._level = min(self.capacity, self.level() + amount)

    def full(self) -> bool:
        """True when the bucket is as a new one would be."""
        return self.level() >= self.capacity - _EPSILON

    def resize(self, capacity: int) -> None:
        """Changes the capacity (and so the rate), keeping the tokens up to the new capacity."""
        level = self.level()
        self.capacity = capacity
        self._level = min(level, capacity)


class Quota:
    """One identity's use of its limits.

    Attributes:
        running: Generations admitted and not ended (running, or waiting for a backend).
        reserved: Output tokens those generations reserved.
    """

    def __init__(self, limits: IdentityLimits, entry: str, clock: Clock = time.monotonic) -> None:
        """Starts with full buckets.

        Args:
            limits: The identity's limits.
            entry: The identity's configuration entry, naming a limit in messages.
            clock: Monotonic seconds, for the refill.
        """
        self.entry = entry
        self.running = 0
        self.reserved = 0
        self._clock = clock
        self.limits = limits
        self._requests = _bucket(limits.requests_per_minute, clock)
        self._tokens = _bucket(limits.output_tokens_per_minute, clock)

    def update(self, limits: IdentityLimits) -> None:
        """Takes new limits (a re-read key file), keeping what is in use."""
        if limits == self.limits:
            return
        self.limits = limits
        self._requests = _resized(self._requests, limits.requests_per_minute, self._clock)
        self._tokens = _resized(self._tokens, limits.output_tokens_per_minute, self._clock)

    def check_size(self, tokens: int, lanes: int = 1) -> None:
        """Refuses a reservation no bucket of this identity can ever hold.

        Raises:
            InvalidArgument: ``tokens`` exceed ``output_tokens_per_minute``; names
                ``start.sampling.max_tokens``.
        """
        capacity = self.limits.output_tokens_per_minute
        if capacity is None or tokens <= capacity:
            return
        each = f" for each of the route's {lanes} targets (MERGE)" if lanes > 1 else ""
        raise InvalidArgument(
            "start.sampling.max_tokens",
            f"{tokens // lanes} tokens{each} exceed {self._key('output_tokens_per_minute')} "
            f"of {capacity}: such a request is never admitted; ask for at most "
            f"{capacity // lanes}",
        )

    def refusal(self, tokens: int) -> ResourceExhausted | None:
        """Why a generation reserving ``tokens`` cannot be admitted now, or None.

        Concurrency comes first (nobody knows when a generation ends: no
        retry delay); between the buckets, the one that takes longer to have
        room, whose wait is the retry delay.
        """
        limit = self.limits.concurrent_generations
        if limit is not None and self.running >= limit:
            return ResourceExhausted(
                f"{self._key('concurrent_generations')}: {self.running} generations running "
                f"of {limit}; retry when one of them ends"
            )
        refusals = [
            refusal
            for refusal in (self._requests_refusal(), self._tokens_refusal(tokens))
            if refusal is not None
        ]
        return max(refusals, key=lambda r: r.retry_after or 0.0, default=None)

    def take(self, tokens: int) -> None:
        """Admits a generation reserving ``tokens`` (``refusal`` said it may)."""
        self.running += 1
        self.reserved += tokens
        if self._requests is not None:
            self._requests.take(1)
        if self._tokens is not None:
            self._tokens.take(tokens)

    def settle(self, reserved: int, used: int) -> None:
        """Ends an admitted generation: gives back ``reserved - used`` tokens (below 0, a debt)."""
        self.running -= 1
        self.reserved -= reserved
        if self._tokens is not None:
            self._tokens.give(reserved - used)

    def idle(self) -> bool:
        """True when nothing is in use and the buckets are full: a new quota would be the same."""
        buckets = (b for b in (self._requests, self._tokens) if b is not None)
        return self.running == 0 and all(bucket.full() for bucket in buckets)

    def tokens_available(self) -> float | None:
        """Output tokens in the bucket now; None without the limit."""
        return None if self._tokens is None else self._tokens.level()

    def _requests_refusal(self) -> ResourceExhausted | None:
        bucket = self._requests
        if bucket is None or (wait := bucket.wait(1)) == 0:
            return None
        used = math.ceil(bucket.capacity - bucket.level())
        return ResourceExhausted(
            f"{self._key('requests_per_minute')}: {used} requests started of "
            f"{bucket.capacity}; retry in {wait:.1f} s",
            retry_after=wait,
        )

    def _tokens_refusal(self, tokens: int) -> ResourceExhausted | None:
        bucket = self._tokens
        if bucket is None or (wait := bucket.wait(tokens)) == 0:
            return None
        used = math.ceil(bucket.capacity - bucket.level())
        return ResourceExhausted(
            f"{self._key('output_tokens_per_minute')}: {used} tokens reserved of "
            f"{bucket.capacity}, this request reserves {tokens}; retry in {wait:.1f} s",
            retry_after=wait,
        )

    def _key(self, name: str) -> str:
        return f"{self.entry}.limits.{name}"


def _bucket(capacity: int | None, clock: Clock) -> TokenBucket | None:
    return None if capacity is None else TokenBucket(capacity, PERIOD, clock)


def _resized(bucket: TokenBucket | None, capacity: int | None, clock: Clock) -> TokenBucket | None:
    if bucket is None or capacity is None:
        return _bucket(capacity, clock)
    bucket.resize(capacity)
    return bucket
