"""The GetStats report: an observer of every generation, with bounded memory.

``StatsObserver`` counts generations per route since the server started, and
keeps one ``StreamRecord`` per generation that finished within the window
(``telemetry.stats_window_seconds``), at most ``max_records`` of them (the
oldest go first). Success rate, latency percentiles, rates and errors come
from those records; percentiles are exact over the samples they keep, which
is every time to first token and up to ``MAX_GAPS`` gaps between chunks per
generation (evenly sampled beyond that). Times come from an injected
monotonic clock, timestamps from an injected wall clock.

The report covers every tenant, so only an admin may ask for it (every caller
is one when the server runs without ``auth``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from llmrouter_server.auth.principal import Principal
from llmrouter_server.errors import NotFound, PermissionDenied
from llmrouter_server.routing.router import Router
from llmrouter_server.streams.events import Chunk, Event
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.lifecycle import FINISHED
from llmrouter_server.telemetry.summary import (
    Counts,
    StatsReport,
    StreamRecord,
    extremes,
    summarize,
)

MAX_GAPS = 128
"""Gaps between chunks a record keeps; a longer generation keeps every k-th."""

MAX_RECORDS = 4096
"""Finished generations kept for the window, by default."""

MAX_ROUTES = 1024
"""Route names counted apart; more (BACKEND/MODEL names are the caller's choice)
are counted under ``OTHER_ROUTES``."""

OTHER_ROUTES = "(other)"
"""The row of the routes beyond ``MAX_ROUTES``."""

EXTREMES = 5
"""Generations in each of the fastest and slowest lists."""


@dataclass(slots=True)
class _Live:
    """What the observer knows of a generation that has not finished."""

    route: str
    started: float
    first_chunk: float | None = None
    last_chunk: float | None = None
    gaps: list[float] = field(default_factory=list)
    seen_gaps: int = 0
    stride: int = 1

    def chunk(self, now: float) -> None:
        """Notes a chunk at ``now``: its gap to the previous one, evenly sampled."""
        if self.first_chunk is None:
            self.first_chunk = now
        elif self.last_chunk is not None:
            if self.seen_gaps % self.stride == 0:
                self.gaps.append(now - self.last_chunk)
                if len(self.gaps) > MAX_GAPS:
                    del self.gaps[1::2]
                    self.stride *= 2
            self.seen_gaps += 1
        self.last_chunk = now

    def rate(self, tokens: int) -> float:
        """Tokens after the first over the time from the first chunk to the last."""
        if self.first_chunk is None or self.last_chunk is None or tokens <= 1:
            return 0.0
        span = self.last_chunk - self.first_chunk
        return (tokens - 1) / span if span > 0 else 0.0


class StatsObserver:
    """Counts and records generations for GetStats (an ``Observer``)."""

    def __init__(
        self,
        window_seconds: float,
        *,
        max_records: int = MAX_RECORDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Starts counting now.

        Args:
            window_seconds: How far back the recent figures look.
            max_records: Most finished generations kept for the window.
            clock: Monotonic seconds, for durations and the window.
            wall_clock: Seconds since the epoch, for timestamps.
        """
        self.window = window_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._since = wall_clock()
        self._records: deque[StreamRecord] = deque(maxlen=max_records)
        self._dropped_at: float | None = None
        self._live: dict[str, _Live] = {}
        self._total = Counts()
        self._routes: dict[str, Counts] = {}

    def state_changed(self, generation: Generation) -> None:
        """Counts a new generation; records a finished one."""
        live = self._live.get(generation.stream_id)
        if live is None and generation.state not in FINISHED:
            self.started(generation.stream_id, generation.route.name)
        elif live is not None and generation.state in FINISHED:
            self.finished(generation)

    def event_added(self, generation: Generation, event: Event) -> None:
        """Times the generation's chunks."""
        if isinstance(event.kind, Chunk):
            self.chunk(generation.stream_id)

    def started(self, stream_id: str, route: str) -> None:
        """Counts a generation on ``route`` that starts now."""
        self._live[stream_id] = _Live(self._route_key(route), self._clock())
        self._total.created += 1
        self._routes[self._live[stream_id].route].created += 1

    def chunk(self, stream_id: str) -> None:
        """Notes a chunk of a counted generation now."""
        live = self._live.get(stream_id)
        if live is not None:
            live.chunk(self._clock())

    def finished(self, generation: Generation) -> None:
        """Records a counted generation that has just finished."""
        live = self._live.pop(generation.stream_id, None)
        if live is None:
            return
        source, first = generation.tally.source, generation.route.targets[0]
        tokens = generation.tally.usage.completion_tokens
        now = self._clock()
        self.add(
            StreamRecord(
                stream_id=generation.stream_id,
                route=live.route,
                model=source.model if source else first.model,
                backend=source.backend if source else first.backend.name,
                tenant=generation.owner.tenant,
                state=generation.state,
                finished_at=now,
                finished_wall=self._wall_clock(),
                duration=now - live.started,
                time_to_first_token=(
                    None if live.first_chunk is None else live.first_chunk - live.started
                ),
                tokens_per_second=live.rate(tokens),
                completion_tokens=tokens,
                gaps=tuple(live.gaps),
                error=generation.error,
            )
        )

    def add(self, record: StreamRecord) -> None:
        """Counts a finished generation and keeps its record for the window."""
        for counts in (self._total, self._routes.setdefault(record.route, Counts())):
            counts.finish(record.state, record.completion_tokens)
        self._prune()
        if len(self._records) == self._records.maxlen:
            self._dropped_at = self._records[0].finished_at
        self._records.append(record)

    def report(self, principal: Principal, router: Router, model: str = "") -> StatsReport:
        """The report over every route, or over the route ``model`` names.

        Raises:
            PermissionDenied: The caller is not an admin.
            NotFound: ``model`` names no route Generate would accept.
        """
        if not principal.admin:
            raise PermissionDenied(
                "GetStats reports on every tenant's generations; only an admin key may call it"
            )
        self._prune()
        if model:
            routes = [_resolve(router, model)]
        else:
            routes = [route.name for route in router.routes()]
            routes += [name for name in self._routes if name not in routes]
        return self._report(routes, selected=bool(model))

    def _report(self, routes: list[str], *, selected: bool) -> StatsReport:
        records = [r for r in self._records if not selected or r.route in routes]
        per_route = tuple(
            summarize(name, self._counts(name), [r for r in records if r.route == name])
            for name in routes
        )
        total = summarize("", per_route[0].counts if selected else self._total, records)
        fastest, slowest = extremes(records, EXTREMES)
        cutoff = self._clock() - self.window
        return StatsReport(
            window=self.window,
            counting_since=self._since,
            generated_at=self._wall_clock(),
            total=total,
            per_route=per_route,
            fastest=fastest,
            slowest=slowest,
            truncated=self._dropped_at is not None and self._dropped_at >= cutoff,
        )

    def _prune(self) -> None:
        """Drops the records that finished before the window."""
        cutoff = self._clock() - self.window
        while self._records and self._records[0].finished_at < cutoff:
            self._records.popleft()

    def _counts(self, route: str) -> Counts:
        return self._routes.get(route) or Counts()

    def _route_key(self, route: str) -> str:
        if route not in self._routes and len(self._routes) >= MAX_ROUTES:
            route = OTHER_ROUTES
        self._routes.setdefault(route, Counts())
        return route


def _resolve(router: Router, model: str) -> str:
    """The name of the route ``model`` names, as Generate resolves it."""
    try:
        return router.resolve(model).name
    except NotFound:
        names = ", ".join(route.name for route in router.routes())
        raise NotFound(
            f"GetStatsRequest.model: unknown model {model!r}; available routes: {names} "
            "(or BACKEND/MODEL)",
            field="GetStatsRequest.model",
        ) from None
