"""From route items to log events: attempt notices, stop sequences, chunks.

Text goes through the shaping pipeline (``shaping/``) per lane: one lane
for a generation, one per target under MERGE (where a stop sequence ends
only that target's text). What a stage holds back is already in the route's
transcript, so a continuation never repeats it; a RESTART drops it with the
discarded answer (a new pipeline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from llmrouter_server.backends.base import Delta
from llmrouter_server.errors import FailedAttempt
from llmrouter_server.routing.items import FallbackUsed, Tagged, Waiting
from llmrouter_server.routing.route import Route
from llmrouter_server.shaping.coalesce import coalescing
from llmrouter_server.shaping.json_stage import JsonStage
from llmrouter_server.shaping.stage import Piece, Pipeline
from llmrouter_server.shaping.stops import StopSequences
from llmrouter_server.streams.accounting import Accounting
from llmrouter_server.streams.events import ChunkSource, JsonSnapshot, Queued
from llmrouter_server.streams.log import ReplayLog
from llmrouter_server.streams.request import GenerationRequest
from llmrouter_server.values import MidStreamAction

OutputItem = Waiting | FailedAttempt | FallbackUsed | Tagged | Delta
"""The route items that become events."""


class Output:
    """Appends a generation's events for the route items it is given."""

    def __init__(
        self,
        request: GenerationRequest,
        route: Route,
        tally: Accounting,
        log: ReplayLog,
        lagging: Callable[[], bool] = lambda: False,
    ) -> None:
        """Sets up the output of one generation.

        Args:
            request: What the client asked for (stop sequences, output format,
                stream options choose the stages).
            route: The route (tags MERGE chunks).
            tally: Counts and builds chunk events.
            log: Where events go.
            lagging: True while the caller's cursor is behind the log's head.
        """
        self._request = request
        self._route = route
        self._tally = tally
        self._log = log
        self._lagging = lagging
        self._lanes: dict[int, Pipeline] = {}
        self._merged = False
        self._timer: asyncio.TimerHandle | None = None

    def record(self, item: OutputItem) -> bool:
        """Appends what ``item`` means; True when a stop sequence ends the generation."""
        if isinstance(item, Waiting):
            self._log.append(Queued(item.position))
        elif isinstance(item, FailedAttempt):
            self._log.append(item)
        elif isinstance(item, FallbackUsed):
            self._log.append(item)
            if item.action is MidStreamAction.RESTART:
                self._lanes.pop(0, None)  # held text belonged to the discarded answer
        elif isinstance(item, Tagged):
            self._merged = True
            self._text(item.delta, item.index, self._source(item.index))
        else:
            return self._text(item, 0, None)
        return False

    def flush(self, *, complete: bool = True) -> None:
        """Appends the text still held back, once the route has ended.

        Args:
            complete: False after a cancel or a failure: held text is kept in
                the log, but the output is not finished (no JSON validation).
        """
        self.close()
        for lane, pipeline in self._lanes.items():
            for piece in pipeline.flush(complete=complete):
                self._append(piece, self._source(lane))

    def close(self) -> None:
        """Stops the timer of stages that release text by time."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _text(self, delta: Delta, lane: int, source: ChunkSource | None) -> bool:
        pipeline = self._lanes.get(lane) or self._lanes.setdefault(lane, self._pipeline())
        if pipeline.empty and delta.finish_reason is None:
            # No stage to pass through (TOKEN, no stop sequence, text output):
            # the delta is the chunk.
            chunk = self._tally.chunk(delta, source)
            if chunk is not None:
                self._log.append(chunk)
            return False
        piece = Piece(delta.text, delta.token_count, delta.token_ids)
        pieces = pipeline.feed(piece)
        if delta.finish_reason is not None:
            self._tally.finished(delta.finish_reason)
            pieces += pipeline.flush()
        for out in pieces:
            self._append(out, source)
        self._schedule()
        # Under MERGE a stop sequence ends only its own lane's text.
        return pipeline.done and source is None

    def _pipeline(self) -> Pipeline:
        """The stages, in their documented order: stop sequences, JSON,
        coalescing (progress and metadata are added to each chunk by the tally)."""
        stops = self._request.stop
        return Pipeline(
            [
                *([StopSequences(stops)] if stops else []),
                *([JsonStage(self._request.json_schema)] if self._request.json_output else []),
                *coalescing(self._request.options.coalescing, self._lagging),
            ]
        )

    def _append(self, piece: Piece, source: ChunkSource | None) -> None:
        delta = Delta(text=piece.text, token_count=piece.token_count, token_ids=piece.token_ids)
        chunk = self._tally.chunk(delta, source)
        if chunk is not None:
            self._log.append(chunk)
        if piece.snapshot is not None:
            self._log.append(JsonSnapshot(piece.snapshot, piece.complete))

    def _schedule(self) -> None:
        """Arms the timer for the soonest stage that releases held text by time."""
        dues = [due for p in self._lanes.values() if (due := p.due_in()) is not None]
        if self._timer is not None or not dues:
            return
        self._timer = asyncio.get_running_loop().call_later(min(dues), self._tick)

    def _tick(self) -> None:
        self._timer = None
        for lane, pipeline in self._lanes.items():
            source = self._source(lane)
            for piece in pipeline.tick():
                self._append(piece, source)
        self._schedule()

    def _source(self, lane: int) -> ChunkSource | None:
        if not self._merged:
            return None
        target = self._route.targets[lane]
        return ChunkSource(target.model, target.backend.name, lane + 1, lane)
