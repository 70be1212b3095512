"""The contract form of a failed attempt, for the event and for the status detail.

An ``attempt_failed`` event and each entry of a ``RouteFailure`` status
detail are the same message, built here from the one ``FailedAttempt``.
"""

from __future__ import annotations

from google.protobuf import duration_pb2
from llmrouter.v1 import events_pb2 as ev_pb

from llmrouter_server.errors import FailedAttempt


def attempt_failed(failed: FailedAttempt) -> ev_pb.AttemptFailed:
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
