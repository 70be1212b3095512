"""Requests: the request side of a bidirectional call, fed from any task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Requests(Generic[T]):
    """Messages put by the caller from any task, read by one call."""

    def __init__(self, *first: T) -> None:
        self._queue: asyncio.Queue[T | None] = asyncio.Queue()
        self._closed = False
        for message in first:
            self.put(message)

    def put(self, message: T) -> bool:
        """Queues ``message``; returns False (dropping it) once closed."""
        if self._closed:
            return False
        self._queue.put_nowait(message)
        return True

    def close(self) -> None:
        """Ends the request side after the messages already queued."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    async def messages(self) -> AsyncIterator[T]:
        """The queued messages, until close(); grpc.aio reads the call's requests here."""
        while (message := await self._queue.get()) is not None:
            yield message
