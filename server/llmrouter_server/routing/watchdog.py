"""A deadline on waiting for a backend that costs next to nothing per delta.

``asyncio.timeout`` around every pull schedules and cancels a timer per token.
A ``Watchdog`` instead keeps one deadline that each pull moves forward, and
one timer that fires rarely: when it fires before the deadline (deltas kept
coming) it is set again for the deadline; when it fires past it while a pull
is waiting, it cancels the task that waits, which ``expired`` then turns into
the caller's own error, as ``asyncio.timeout`` does. Between pulls (the
consumer is paused, or busy elsewhere) no deadline runs.
"""

from __future__ import annotations

import asyncio


class Watchdog:
    """Cancels a waiting pull once it has waited past its deadline."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._deadline: float | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._timer: asyncio.TimerHandle | None = None
        self._fired = False

    def arm(self, seconds: float | None) -> None:
        """A pull starts now in the current task, allowed ``seconds`` (None: no limit)."""
        if seconds is None:
            self._deadline = None
            return
        task = asyncio.current_task(self._loop)
        assert task is not None, "a pull runs in a task"
        self._task, self._cancelling = task, task.cancelling()
        self._deadline = self._loop.time() + seconds
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._check)

    def disarm(self) -> None:
        """The pull is over: nothing runs down until the next ``arm``."""
        self._deadline = None

    def expired(self) -> bool:
        """Called on ``CancelledError`` from a pull: True when this watchdog
        cancelled it (and nothing else did), so the caller raises its timeout."""
        if not self._fired:
            return False
        self._fired = False
        assert self._task is not None
        return self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        """Stops the timer."""
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self._task is None:
            return
        if self._loop.time() < deadline:
            self._timer = self._loop.call_at(deadline, self._check)
            return
        self._deadline = None
        self._fired = True
        self._task.cancel()
