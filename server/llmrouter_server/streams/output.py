"""From route items to log events: attempt notices, stop sequences, chunks.

Stop sequences are matched per lane: one lane for a generation, one per
target under MERGE (where a stop sequence ends only that target's text).
Text a matcher holds back is already in the route's transcript, so a
continuation never repeats it; a RESTART drops it with the discarded answer.
"""

from __future__ import annotations

from dataclasses import replace

from llmrouter_server.backends.base import Delta
from llmrouter_server.routing.items import AttemptFailed, FallbackUsed, Tagged, Waiting
from llmrouter_server.routing.route import Route
from llmrouter_server.streams.accounting import Accounting
from llmrouter_server.streams.events import ChunkSource, Queued
from llmrouter_server.streams.log import ReplayLog
from llmrouter_server.streams.stops import StopMatcher
from llmrouter_server.values import MidStreamAction

OutputItem = Waiting | AttemptFailed | FallbackUsed | Tagged | Delta
"""The route items that become events."""


class Output:
    """Appends a generation's events for the route items it is given."""

    def __init__(
        self, stops: tuple[str, ...], route: Route, tally: Accounting, log: ReplayLog
    ) -> None:
        self._stops = stops
        self._route = route
        self._tally = tally
        self._log = log
        self._lanes: dict[int, StopMatcher] = {}
        self._merged = False

    def record(self, item: OutputItem) -> bool:
        """Appends what ``item`` means; True when a stop sequence ends the generation."""
        if isinstance(item, Waiting):
            self._log.append(Queued(item.position))
        elif isinstance(item, AttemptFailed):
            self._log.append(item)
        elif isinstance(item, FallbackUsed):
            self._log.append(item)
            if item.action is MidStreamAction.RESTART:
                self._lanes.pop(0, None)  # held text belonged to the discarded answer
        elif isinstance(item, Tagged):
            self._merged = True
            target = item.target
            source = ChunkSource(target.model, target.backend.name, item.attempt, item.index)
            self._text(item.delta, item.index, source)
        else:
            return self._text(item, 0, None)
        return False

    def flush(self) -> None:
        """Appends the text still held back, once the route has ended."""
        for lane, stops in self._lanes.items():
            chunk = self._tally.chunk(Delta(text=stops.flush()), self._source(lane))
            if chunk is not None:
                self._log.append(chunk)

    def _text(self, delta: Delta, lane: int, source: ChunkSource | None) -> bool:
        stops = self._lanes.setdefault(lane, StopMatcher(self._stops))
        text = stops.feed(delta.text)
        if delta.finish_reason is not None:
            text += stops.flush()
        chunk = self._tally.chunk(replace(delta, text=text), source)
        if chunk is not None:
            self._log.append(chunk)
        return stops.stopped and source is None

    def _source(self, lane: int) -> ChunkSource | None:
        if not self._merged:
            return None
        target = self._route.targets[lane]
        return ChunkSource(target.model, target.backend.name, lane + 1, lane)
