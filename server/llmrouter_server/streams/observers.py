"""Observers of generations: what metrics, traces, stats, logs and the registry watch.

Each generation keeps one list of observers and tells every one of them about
its state changes and about every event it appends, in that order, on the
event loop. Observers do not compete for one hook and do not know about each
other; an observer must be quick (it runs on the producer's path) and must
not raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from llmrouter_server.streams.events import Event
    from llmrouter_server.streams.generation import Generation


class Observer(Protocol):
    """Watches generations."""

    def state_changed(self, generation: Generation) -> None:
        """``generation.state`` has just changed (QUEUED is its first state, announced
        when the generation is registered; a finished state is its last)."""

    def event_added(self, generation: Generation, event: Event) -> None:
        """``event`` has just been appended to ``generation.log``."""
