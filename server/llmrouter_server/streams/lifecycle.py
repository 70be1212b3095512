"""The states a generation goes through, and which of them are final.

A generation starts QUEUED (waiting for admission), turns RUNNING with its
first attempt, may be PAUSED and resumed any number of times, and ends
COMPLETED, FAILED or CANCELLED, states it never leaves. The checks here
refuse what a state does not allow.
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


def check_pause(state: StreamState, stream_id: str) -> None:
    """Refuses to pause a generation that has finished or is paused already.

    Raises:
        FailedPrecondition: Saying which.
    """
    check_running(state, "pause", stream_id)
    if state is StreamState.PAUSED:
        raise FailedPrecondition(f"stream {stream_id!r} is already paused", stream_id=stream_id)


def check_resume(state: StreamState, stream_id: str) -> None:
    """Refuses to resume a generation that is not paused.

    Raises:
        FailedPrecondition: Saying what it is.
    """
    check_running(state, "resume", stream_id)
    if state is not StreamState.PAUSED:
        raise FailedPrecondition(
            f"stream {stream_id!r} is not paused (it is {state})", stream_id=stream_id
        )
