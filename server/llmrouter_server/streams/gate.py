"""The gate a generation's producer passes before each pull from its route.

The producer waits while the generation is paused or a lossless consumer is
past its window (``log.py``). A producer that waits longer than
``release_after`` is told so, and gives its backend back (the llama.cpp
instance, the HTTP connection); it continues later on a new backend stream.
"""

from __future__ import annotations

import asyncio

from llmrouter_server.streams.log import ReplayLog


class Gate:
    """Whether the producer may pull: not paused, and every lossless cursor has room."""

    def __init__(self, log: ReplayLog, release_after: float) -> None:
        """Sets up an open gate.

        Args:
            log: The generation's replay log, whose lossless cursors hold it.
            release_after: Seconds a producer waits before it gives its backend back.
        """
        self._log = log
        self._release_after = release_after
        self._unpaused = asyncio.Event()
        self._unpaused.set()

    def pause(self) -> None:
        """Holds the producer before its next pull."""
        self._unpaused.clear()

    def resume(self) -> None:
        """Lets a paused producer go on."""
        self._unpaused.set()

    async def passes(self) -> bool:
        """Waits until the producer may pull; False when it waited longer than
        ``release_after`` (the producer then releases its backend)."""
        if self._unpaused.is_set() and not self._log.blocked():
            return True
        try:
            async with asyncio.timeout(self._release_after):
                await self.wait()
        except TimeoutError:
            return False
        return True

    async def wait(self) -> None:
        """Waits, however long, until the producer may pull."""
        while True:
            await self._unpaused.wait()
            await self._log.wait_room()
            if self._unpaused.is_set():
                return
