"""The store of generations by stream id, with retention and state watchers.

Running generations stay until they finish; finished ones are kept for
replay for ``retain_seconds`` and within ``retain_total_bytes`` (the oldest
finished go first). The budget counts everything a finished generation
keeps: its retained events, its request (input, schema, stop sequences,
labels) and an estimate of its objects, as ``Generation.retained_bytes``
says when it finishes; the total is kept as it changes, so pruning costs
nothing per retained generation. This is the in-memory store; a shared store
(so any replica can serve any stream) implements the same methods.

Stream ids are scoped to a tenant: two tenants may both use ``job-1``, and a
tenant's lookups and watches never see another tenant's generations — an
unknown id and another tenant's id are the same NOT_FOUND. An admin sees
every tenant; when several tenants hold the id it names, it qualifies the id
as ``TENANT/ID``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable

from llmrouter_server.auth.principal import Principal
from llmrouter_server.errors import AlreadyExists, InvalidArgument, NotFound
from llmrouter_server.streams.events import Event
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.lifecycle import FINISHED, StreamState
from llmrouter_server.streams.status import StreamStatus, snapshot

WATCH_QUEUE = 256
"""Statuses a watcher may have unread; past that the oldest are dropped (a later
status of the same stream supersedes them)."""

_Key = tuple[str, str]
"""A generation's tenant and stream id."""


def _key(generation: Generation) -> _Key:
    return (generation.owner.tenant, generation.stream_id)


class Watcher:
    """State changes of some (or all) generations, as statuses, oldest first."""

    def __init__(self, principal: Principal, on_close: Callable[[Watcher], None]) -> None:
        self.principal = principal
        self.stream_ids: set[str] | None = set()
        self._on_close = on_close
        self._statuses: deque[StreamStatus] = deque(maxlen=WATCH_QUEUE)
        self._ready = asyncio.Event()

    def wants(self, generation: Generation) -> bool:
        """True when this watcher follows the generation (and may see it)."""
        if not self.principal.sees(generation.owner.tenant):
            return False
        return self.stream_ids is None or generation.stream_id in self.stream_ids

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
    """Generations by stream id; an observer of each one it holds."""

    def __init__(
        self,
        retain_seconds: float,
        retain_total_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._retain_seconds = retain_seconds
        self._retain_total_bytes = retain_total_bytes
        self._clock = clock
        self._streams: dict[_Key, Generation] = {}
        self._tenants: dict[str, set[str]] = {}
        """The tenants holding each stream id (an admin's lookup by bare id)."""
        self._finished: OrderedDict[_Key, int] = OrderedDict()
        """Finished generations, oldest first, with the bytes each was counted for."""
        self._retained = 0
        """The bytes of every finished generation kept."""
        self._watchers: set[Watcher] = set()

    def add(self, generation: Generation) -> None:
        """Registers a generation and reports its state changes to watchers.

        Raises:
            AlreadyExists: The stream id is taken (by a running or retained one).
        """
        self.prune()
        key = _key(generation)
        if key in self._streams:
            raise AlreadyExists(
                f"start.stream_id: stream {generation.stream_id!r} already exists",
                field="start.stream_id",
            )
        self._streams[key] = generation
        self._tenants.setdefault(generation.stream_id, set()).add(key[0])
        generation.observers.append(self)
        self.state_changed(generation)

    def get(self, principal: Principal, stream_id: str) -> Generation:
        """Finds a generation the principal may see.

        Raises:
            NotFound: No running or retained generation with this id is visible
                to the principal (another tenant's is not told apart).
            InvalidArgument: An admin named a bare id that several tenants hold.
        """
        found = self._streams.get((principal.tenant, stream_id))
        if found is None and principal.admin:
            found = self._admin_lookup(stream_id)
        if found is None:
            raise NotFound(
                f"stream {stream_id!r} not found (unknown, or finished more than "
                f"{self._retain_seconds:g} s ago)",
                stream_id=stream_id,
            )
        return found

    def _admin_lookup(self, stream_id: str) -> Generation | None:
        tenant, slash, bare = stream_id.partition("/")
        if slash:
            return self._streams.get((tenant, bare))
        tenants = self._tenants.get(stream_id, set())
        if len(tenants) > 1:
            raise InvalidArgument(
                "stream_id",
                f"stream {stream_id!r} exists in tenants {', '.join(sorted(tenants))}; "
                "name it as TENANT/ID",
            )
        return self._streams.get((next(iter(tenants)), stream_id)) if tenants else None

    def running(self) -> list[Generation]:
        """Generations not finished yet."""
        return [g for g in self._streams.values() if g.state not in FINISHED]

    def statuses(
        self, principal: Principal, states: Iterable[StreamState] = ()
    ) -> list[StreamStatus]:
        """Statuses of the visible generations in ``states`` (all when empty), newest first."""
        self.prune()
        wanted = set(states)
        chosen = [
            g
            for g in self._streams.values()
            if (not wanted or g.state in wanted) and principal.sees(g.owner.tenant)
        ]
        return [snapshot(g) for g in sorted(chosen, key=lambda g: -g.created_at)]

    def watch(self, principal: Principal) -> Watcher:
        """A new watcher of no stream yet, seeing what the principal may see."""
        watcher = Watcher(principal, self._watchers.discard)
        self._watchers.add(watcher)
        return watcher

    @property
    def retained_bytes(self) -> int:
        """Bytes counted against ``retain_total_bytes``: every finished generation kept."""
        return self._retained

    def prune(self) -> None:
        """Forgets finished generations past their time or over the byte budget."""
        deadline = self._clock() - self._retain_seconds
        while self._finished:
            key = next(iter(self._finished))
            finished_at = self._streams[key].finished_at or 0
            if finished_at > deadline and self._retained <= self._retain_total_bytes:
                return
            self._forget(key)

    def event_added(self, generation: Generation, event: Event) -> None:
        """Events are the log's business, not the registry's."""

    def state_changed(self, generation: Generation) -> None:
        """Keeps finished generations for retention; pushes the status to watchers."""
        key = _key(generation)
        if generation.state in FINISHED and key not in self._finished:
            size = generation.retained_bytes
            self._finished[key] = size
            self._retained += size
            self.prune()
        status = snapshot(generation)
        for watcher in list(self._watchers):
            if watcher.wants(generation):
                watcher.push(status)

    def _forget(self, key: _Key) -> None:
        self._retained -= self._finished.pop(key, 0)
        self._streams.pop(key, None)
        tenants = self._tenants.get(key[1])
        if tenants is not None:
            tenants.discard(key[0])
            if not tenants:
                del self._tenants[key[1]]
