"""The bounded hand-off between a generation's producer and its writer.

Overflow policy: the producer waits (lossless). The terminal event is always
accepted, one past the bound, so a generation can always end.
"""

from __future__ import annotations

import asyncio
from collections import deque

from llmrouter_server.errors import RouterError
from llmrouter_server.streams.events import Event


class Handoff:
    """A single-producer, single-consumer FIFO of at most ``max_events``."""

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self._items: deque[Event] = deque()
        self._not_full = asyncio.Event()
        self._not_empty = asyncio.Event()
        self._closed = False
        self._error: RouterError | None = None

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, event: Event) -> None:
        """Appends an event, waiting while the hand-off is full."""
        while len(self._items) >= self.max_events:
            self._not_full.clear()
            await self._not_full.wait()
        self._items.append(event)
        self._not_empty.set()

    def close(self, final: Event | None = None, error: RouterError | None = None) -> None:
        """Ends the stream after ``final``; the consumer then gets ``error`` or None."""
        if final is not None:
            self._items.append(final)
        self._closed = True
        self._error = error
        self._not_empty.set()

    async def get(self) -> Event | None:
        """Takes the next event; None once closed and drained.

        Raises:
            RouterError: The error the stream was closed with, after the
                events before it.
        """
        while not self._items:
            if self._closed:
                if self._error is not None:
                    raise self._error
                return None
            self._not_empty.clear()
            await self._not_empty.wait()
        event = self._items.popleft()
        self._not_full.set()
        return event
