"""The store of generations by stream id.

This is the in-memory store; a shared store (so any replica can serve any
stream) implements the same methods.
"""

from __future__ import annotations

from collections.abc import Iterator

from llmrouter_server.errors import AlreadyExists, NotFound
from llmrouter_server.streams.generation import Generation


class StreamRegistry:
    """Live generations by stream id."""

    def __init__(self) -> None:
        self._streams: dict[str, Generation] = {}

    def add(self, generation: Generation) -> None:
        """Registers a generation.

        Raises:
            AlreadyExists: The stream id is taken.
        """
        if generation.stream_id in self._streams:
            raise AlreadyExists(
                f"start.stream_id: stream {generation.stream_id!r} already exists",
                field="start.stream_id",
            )
        self._streams[generation.stream_id] = generation

    def get(self, stream_id: str) -> Generation:
        """Finds a generation.

        Raises:
            NotFound: No generation has this id.
        """
        try:
            return self._streams[stream_id]
        except KeyError:
            raise NotFound(f"stream {stream_id!r} not found", stream_id=stream_id) from None

    def remove(self, stream_id: str) -> None:
        """Forgets a generation; unknown ids are ignored."""
        self._streams.pop(stream_id, None)

    def __iter__(self) -> Iterator[Generation]:
        return iter(list(self._streams.values()))

    def __len__(self) -> int:
        return len(self._streams)
