"""The contract form of a failed attempt, for the event and for the status detail.

An ``attempt_failed`` event and each entry of a ``RouteFailure`` status
detail are the same message, built here from either domain form.
"""

from __future__ import annotations

from typing import Protocol

from google.protobuf import duration_pb2
from llmrouter.v1 import events_pb2 as ev_pb


class FailedAttemptLike(Protocol):
    """What routing's ``AttemptFailed`` item and the errors' ``FailedAttempt`` share."""

    @property
    def attempt(self) -> int: ...
    @property
    def target(self) -> int: ...
    @property
    def model(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def error_reason(self) -> str: ...
    @property
    def http_status(self) -> int: ...
    @property
    def tokens(self) -> int: ...
    @property
    def will_retry(self) -> bool: ...
    @property
    def retry_delay(self) -> float: ...


def attempt_failed(failed: FailedAttemptLike) -> ev_pb.AttemptFailed:
    """The ``AttemptFailed`` message of a failed attempt."""
    message = ev_pb.AttemptFailed(
        attempt=failed.attempt,
        model=failed.model,
        backend=failed.backend,
        reason=failed.reason,
        will_retry=failed.will_retry,
        target=failed.target,
        error_reason=failed.error_reason,
        http_status=failed.http_status,
        tokens=failed.tokens,
    )
    if failed.will_retry:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(failed.retry_delay * 1e9))
        message.retry_delay.CopyFrom(delay)
    return message
