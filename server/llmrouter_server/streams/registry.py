"""The store of generations by stream id, with retention and state watchers.

Running generations stay until they finish; finished ones are kept for
replay for ``retain_seconds`` and within ``retain_total_bytes`` of events
(the oldest finished go first). This is the in-memory store; a shared store
(so any replica can serve any stream) implements the same methods.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable

from llmrouter_server.errors import AlreadyExists, NotFound
from llmrouter_server.streams.generation import FINISHED, Generation, StreamState
from llmrouter_server.streams.status import StreamStatus, snapshot

WATCH_QUEUE = 256
"""Statuses a watcher may have unread; past that the oldest are dropped (a later
status of the same stream supersedes them)."""


class Watcher:
    """State changes of some (or all) generations, as statuses, oldest first."""

    def __init__(self, on_close: Callable[[Watcher], None]) -> None:
        self.stream_ids: set[str] | None = set()
        self._on_close = on_close
        self._statuses: deque[StreamStatus] = deque(maxlen=WATCH_QUEUE)
        self._ready = asyncio.Event()

    def wants(self, stream_id: str) -> bool:
        """True when this watcher follows the stream."""
        return self.stream_ids is None or stream_id in self.stream_ids

    def push(self, status: StreamStatus) -> None:
        """Queues a status, dropping the oldest when full."""
        self._statuses.append(status)
        self._ready.set()

    async def next(self) -> StreamStatus:
        """The next status."""
        while not self._statuses:
            self._ready.clear()
            await self._ready.wait()
        return self._statuses.popleft()

    def close(self) -> None:
        """Stops watching."""
        self._on_close(self)


class StreamRegistry:
    """Generations by stream id."""

    def __init__(
        self,
        retain_seconds: float,
        retain_total_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._retain_seconds = retain_seconds
        self._retain_total_bytes = retain_total_bytes
        self._clock = clock
        self._streams: dict[str, Generation] = {}
        self._finished: OrderedDict[str, Generation] = OrderedDict()
        self._watchers: set[Watcher] = set()

    def add(self, generation: Generation) -> None:
        """Registers a generation and reports its state changes to watchers.

        Raises:
            AlreadyExists: The stream id is taken (by a running or retained one).
        """
        self.prune()
        if generation.stream_id in self._streams:
            raise AlreadyExists(
                f"start.stream_id: stream {generation.stream_id!r} already exists",
                field="start.stream_id",
            )
        self._streams[generation.stream_id] = generation
        generation.on_change = self._changed
        self._changed(generation)

    def get(self, stream_id: str) -> Generation:
        """Finds a generation.

        Raises:
            NotFound: No running or retained generation has this id.
        """
        try:
            return self._streams[stream_id]
        except KeyError:
            raise NotFound(
                f"stream {stream_id!r} not found (unknown, or finished more than "
                f"{self._retain_seconds:g} s ago)",
                stream_id=stream_id,
            ) from None

    def running(self) -> list[Generation]:
        """Generations not finished yet."""
        return [g for g in self._streams.values() if g.state not in FINISHED]

    def statuses(self, states: Iterable[StreamState] = ()) -> list[StreamStatus]:
        """Statuses of every generation in ``states`` (all when empty), newest first."""
        self.prune()
        wanted = set(states)
        chosen = [g for g in self._streams.values() if not wanted or g.state in wanted]
        return [snapshot(g) for g in sorted(chosen, key=lambda g: -g.created_at)]

    def watch(self) -> Watcher:
        """A new watcher of no stream yet."""
        watcher = Watcher(self._watchers.discard)
        self._watchers.add(watcher)
        return watcher

    def prune(self) -> None:
        """Forgets finished generations past their time or over the byte budget."""
        deadline = self._clock() - self._retain_seconds
        while self._finished:
            oldest = next(iter(self._finished.values()))
            if (
                oldest.finished_at or 0
            ) > deadline and self._retained() <= self._retain_total_bytes:
                return
            self._forget(oldest.stream_id)

    def _changed(self, generation: Generation) -> None:
        if generation.state in FINISHED:
            self._finished[generation.stream_id] = generation
            self.prune()
        status = snapshot(generation)
        for watcher in list(self._watchers):
            if watcher.wants(generation.stream_id):
                watcher.push(status)

    def _retained(self) -> int:
        return sum(g.log.retained_bytes for g in self._finished.values())

    def _forget(self, stream_id: str) -> None:
        self._finished.pop(stream_id, None)
        self._streams.pop(stream_id, None)
