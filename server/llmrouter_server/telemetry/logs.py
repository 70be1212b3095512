"""The log lines of a generation's life: an observer of every generation.

At INFO, one line when a generation starts (its id, route, model, tenant) and
one when it finishes (state, duration, tokens, finish reason; WARNING with the
error's reason when it failed). At DEBUG, one line per event it records: the
per-stream event log. Every line carries its fields with ``extra=``, so the
JSON format (``logs.py``) has them as keys. Attempt failures, retries,
fallbacks and cancellations are logged where they happen (routing, the
generation), with the same fields.
"""

from __future__ import annotations

import logging

from llmrouter_server.errors import FailedAttempt
from llmrouter_server.streams.events import Chunk, Event, JsonSnapshot
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.lifecycle import FINISHED, StreamState

logger = logging.getLogger("llmrouter_server.streams")
"""The logger of generations' lines."""

_MAX_DESCRIPTION = 300
"""Characters of an event's description in the DEBUG event log."""


class LogObserver:
    """Logs each generation's start, end and (at DEBUG) events (an ``Observer``)."""

    def __init__(self, log: logging.Logger = logger) -> None:
        """Logs to ``log``."""
        self._log = log
        self._seen: set[str] = set()

    def state_changed(self, generation: Generation) -> None:
        """Logs the first state as the start and a finished state as the end."""
        stream_id = generation.stream_id
        if generation.state in FINISHED:
            if stream_id in self._seen:
                self._seen.discard(stream_id)
                self._finished(generation)
        elif stream_id not in self._seen:
            self._seen.add(stream_id)
            self._started(generation)

    def event_added(self, generation: Generation, event: Event) -> None:
        """Logs the event at DEBUG."""
        if self._log.isEnabledFor(logging.DEBUG):
            kind = type(event.kind).__name__
            self._log.debug(
                "stream %s event %d: %s (%s)",
                generation.stream_id, event.offset, kind, _describe(event),
                extra={**_fields(generation), "offset": event.offset, "event": kind},
            )  # fmt: skip

    def _started(self, generation: Generation) -> None:
        target = generation.route.targets[0]
        self._log.info(
            "stream %s started on route %s (model %s/%s, tenant %s)",
            generation.stream_id, generation.route.name, target.backend.name, target.model,
            generation.owner.tenant or '""',
            extra=_fields(generation),
        )  # fmt: skip

    def _finished(self, generation: Generation) -> None:
        tally = generation.tally
        duration = (generation.finished_at or generation.created_at) - generation.created_at
        reason = tally.final_reason.value if tally.final_reason else ""
        tokens = tally.usage.completion_tokens
        fields = {
            **_fields(generation),
            "state": generation.state.value,
            "duration_seconds": round(duration, 6),
            "completion_tokens": tokens,
            "finish_reason": reason,
            "attempts": generation.transcript.attempts,
        }
        error = generation.error
        if generation.state is StreamState.FAILED and error is not None:
            fields["error_reason"] = error.reason
            self._log.warning(
                "stream %s failed after %.3f s and %d tokens: %s",
                generation.stream_id, duration, tokens, error.message,
                extra=fields,
            )  # fmt: skip
            return
        self._log.info(
            "stream %s %s after %.3f s: %d tokens, finish reason %s",
            generation.stream_id, generation.state.value, duration, tokens, reason,
            extra=fields,
        )  # fmt: skip


def _fields(generation: Generation) -> dict[str, object]:
    """The fields every line about ``generation`` carries."""
    source = generation.tally.source
    target = generation.route.targets[0]
    fields: dict[str, object] = {
        "stream_id": generation.stream_id,
        "route": generation.route.name,
        "model": source.model if source else target.model,
        "target": f"{source.backend}/{source.model}" if source else target.name,
        "tenant": generation.owner.tenant,
    }
    if source is not None:
        fields["attempt"] = source.attempt
    return fields


def _describe(event: Event) -> str:
    """The event, short: generated text and JSON are the user's data and are left out."""
    kind = event.kind
    if isinstance(kind, Chunk):
        return f"{kind.token_count} tokens, {len(kind.text)} characters"
    if isinstance(kind, JsonSnapshot):
        return f"complete={kind.complete}"
    if isinstance(kind, FailedAttempt):
        return f"attempt {kind.attempt} on {kind.backend}/{kind.model}: {kind.reason}"
    return repr(kind)[:_MAX_DESCRIPTION]
