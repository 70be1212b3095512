"""Admission: each identity's limits on the generations it starts.

A generation is admitted before it is routed. ``Admission.admit`` runs when
the generation starts and returns a ``Ticket``; the producer waits on
``Ticket.wait`` before it routes, and calls ``Ticket.finish`` with the tokens
it used once it has stopped (completed, failed or cancelled), exactly once.

An identity's ``limits`` (its ``auth.api_keys`` or ``auth.client_certificates``
entry; the buckets are ``auth/quota.py``) are ``concurrent_generations``
(admitted and not ended, whether running or waiting for a backend),
``requests_per_minute`` and ``output_tokens_per_minute``: a generation
reserves its effective ``max_tokens`` (under MERGE, once per target) and gets
back what it did not use when it ends. The waiting itself is ``ticket.py``.
Over a limit:

* ``on_limit: reject``: the start fails with RESOURCE_EXHAUSTED naming the
  limit, with a retry delay when a bucket says when it will have room (none
  for concurrency: nobody knows when a generation ends).
* ``on_limit: queue``: the generation starts QUEUED and waits in its
  identity's FIFO line (at most ``max_queued`` long), its stream showing
  ``queued`` events with its place (1 is next), until every limit allows it,
  or fails with RESOURCE_EXHAUSTED when the call's deadline passes first.
  The line is strictly first in, first out: a large request at its head is
  not overtaken by smaller ones, so it is never starved.

A request reserving more than the identity's bucket holds would never be
admitted: it is INVALID_ARGUMENT naming ``start.sampling.max_tokens``, at
once, in both modes (RESOURCE_EXHAUSTED would invite retries that cannot
succeed).

An identity's state is dropped once nothing is in use and its buckets are
full (a new one starts the same), so the state kept is bounded by the
identities in use. Identities without limits (``OPEN`` among them) keep none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from llmrouter_server.auth.principal import Principal
from llmrouter_server.auth.quota import Clock, Quota
from llmrouter_server.config import IdentityLimits, OnLimit
from llmrouter_server.errors import ResourceExhausted
from llmrouter_server.routing.slots import QueueClaim
from llmrouter_server.streams.ticket import Line, Ticket

__all__ = ["Admission", "AdmissionStatus", "Ticket", "limited", "queue_claim"]

_SWEEP_ABOVE = 64
"""Identities kept before idle ones are looked for on admission (then twice as many)."""


def limited(limits: IdentityLimits) -> bool:
    """True when any admission limit is set."""
    return any(
        limit is not None
        for limit in (
            limits.concurrent_generations,
            limits.requests_per_minute,
            limits.output_tokens_per_minute,
        )
    )


def queue_claim(principal: Principal) -> QueueClaim:
    """What a principal's generations may hold of a backend's queue."""
    return QueueClaim(
        tenant=principal.tenant,
        share=principal.limits.queue_share,
        setting=f"{_entry(principal)}.limits.queue_share",
    )


@dataclass(frozen=True, slots=True)
class AdmissionStatus:
    """One identity's use of its limits at one moment."""

    running: int = 0
    """Generations admitted and not ended."""
    waiting: int = 0
    """Generations in its line."""
    reserved: int = 0
    """Output tokens the admitted generations reserved."""
    tokens_available: float | None = None
    """Output tokens in its bucket; None without that limit (or with a full bucket
    the admission has forgotten)."""


class Admission:
    """The limits of every identity, and the lines of those waiting for them."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        """Keeps no state until an identity with limits starts a generation.

        Args:
            clock: Monotonic seconds, for the token buckets.
        """
        self._clock = clock
        self._lines: dict[str, Line] = {}
        self._sweep_at = _SWEEP_ABOVE

    def admit(
        self, principal: Principal, tokens: int, deadline: float | None = None, lanes: int = 1
    ) -> Ticket:
        """Admits a generation reserving ``tokens``, or queues it, or refuses it.

        Args:
            principal: Who starts it.
            tokens: The output tokens it may produce (all lanes together).
            deadline: The call's deadline (``time.monotonic``); a queued
                ticket waits no longer.
            lanes: Targets producing at once (MERGE), for the size message.

        Raises:
            InvalidArgument: ``tokens`` exceed what the identity's bucket holds.
            ResourceExhausted: Over a limit with ``on_limit: reject``, or the
                identity's line is full.
        """
        limits = principal.limits
        if not limited(limits):
            return Ticket(None, tokens, deadline)
        line = self._line(principal)
        line.quota.check_size(tokens, lanes)
        refusal = line.quota.refusal(tokens)
        if refusal is not None and limits.on_limit is OnLimit.REJECT:
            raise refusal
        if refusal is None and not (limits.on_limit is OnLimit.QUEUE and line.waiting):
            line.quota.take(tokens)
            return Ticket(line, tokens, deadline, admitted=True)
        if len(line.waiting) >= limits.max_queued:
            raise ResourceExhausted(
                f"{line.quota.entry}.limits.max_queued: {len(line.waiting)} requests already "
                "wait for this identity's limits"
            )
        ticket = Ticket(line, tokens, deadline)
        line.waiting.append(ticket)
        return ticket

    def status(self, principal: Principal) -> AdmissionStatus:
        """What the principal's identity uses of its limits now."""
        line = self._lines.get(_entry(principal))
        if line is None:
            return AdmissionStatus()
        quota = line.quota
        return AdmissionStatus(
            quota.running, len(line.waiting), quota.reserved, quota.tokens_available()
        )

    def _line(self, principal: Principal) -> Line:
        key = _entry(principal)
        line = self._lines.get(key)
        if line is None:
            self._sweep()
            line = Line(key, Quota(principal.limits, key, self._clock), self._drop)
            self._lines[key] = line
        line.quota.update(principal.limits)
        return line

    def _drop(self, line: Line) -> None:
        if self._lines.get(line.key) is line:
            del self._lines[line.key]

    def _sweep(self) -> None:
        """Forgets idle identities once many are kept (amortised: the bound doubles)."""
        if len(self._lines) < self._sweep_at:
            return
        for line in [line for line in self._lines.values() if line.idle()]:
            self._drop(line)
        self._sweep_at = max(_SWEEP_ABOVE, 2 * len(self._lines))


def _entry(principal: Principal) -> str:
    """The key naming the principal's limits (its configuration entry)."""
    return principal.entry or principal.identity
