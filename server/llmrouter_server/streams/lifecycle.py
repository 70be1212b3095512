"""The states a generation goes through, and which of them are final.

A generation starts QUEUED (waiting for admission), turns RUNNING with its
first attempt, may be PAUSED and resumed any number of times, and ends
COMPLETED, FAILED or CANCELLED, states it never leaves.
"""

from __future__ import annotations

from enum import StrEnum

from llmrouter_server.errors import FailedPrecondition


class StreamState(StrEnum):
    """The lifecycle of a generation."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({StreamState.COMPLETED, StreamState.FAILED, StreamState.CANCELLED})
"""States a generation never leaves."""

_ENDED = {
    StreamState.COMPLETED: "has completed",
    StreamState.FAILED: "has failed",
    StreamState.CANCELLED: "was cancelled",
}


def check_running(state: StreamState, action: str, stream_id: str) -> None:
    """Refuses ``action`` (pause, resume) on a generation that has finished.

    Raises:
        FailedPrecondition: Saying how the generation ended.
    """
    if state in FINISHED:
        raise FailedPrecondition(
            f"cannot {action} stream {stream_id!r}: it {_ENDED[state]}", stream_id=stream_id
        )
