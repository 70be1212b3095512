"""A scripted backend for tests and demos: emits given steps, fails on cue.

Like httpx's ``MockTransport``, it implements the real interface, so the
router, the streams and the gRPC layer run unchanged on top of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.errors import RouterError
from llmrouter_server.values import FinishReason, Usage


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a script."""

    text: str = ""
    """Text to emit as one token."""
    delay: float = 0.0
    """Seconds to wait before the step."""
    error: RouterError | None = None
    """Raise this instead of emitting."""
    stall: bool = False
    """Wait forever (until cancelled) instead of emitting."""


Script = Sequence[Step] | Callable[[BackendRequest], Sequence[Step]]


class ScriptedBackend:
    """Plays a script per request and counts what it was asked for.

    Attributes:
        emitted: Deltas handed out over all streams.
        open_streams: Streams started and not yet closed.
        requests: Every request received, in order.
    """

    kind = "scripted"
    supports_json = True

    def __init__(self, name: str, script: Script, *, max_concurrency: int = 64) -> None:
        self.name = name
        self.max_concurrency = max_concurrency
        self.script = script
        self.emitted = 0
        self.open_streams = 0
        self.requests: list[BackendRequest] = []

    async def stream(self, request: BackendRequest) -> AsyncGenerator[Delta, None]:
        """Plays the script; the last text step carries the finish reason."""
        self.requests.append(request)
        self.open_streams += 1
        try:
            steps = self.script(request) if callable(self.script) else self.script
            texts = 0
            for step in _after(steps, request.continuation):
                await self._wait(step)
                texts += 1
                self.emitted += 1
                yield Delta(text=step.text, token_count=1)
                if texts >= request.max_tokens:
                    yield Delta(finish_reason=FinishReason.LENGTH, usage=Usage(1, texts))
                    return
            yield Delta(finish_reason=FinishReason.STOP, usage=Usage(1, texts))
        finally:
            self.open_streams -= 1

    async def _wait(self, step: Step) -> None:
        # Like a real backend, every step lets the event loop run.
        await asyncio.sleep(step.delay)
        if step.stall:
            await asyncio.Event().wait()
        if step.error is not None:
            raise step.error

    async def close(self) -> None:
        """Nothing to release."""


def words(text: str, *, delay: float = 0.0) -> list[Step]:
    """A script emitting ``text`` word by word (spaces kept), one token each."""
    pieces = text.split(" ")
    tokens = [pieces[0]] + [" " + piece for piece in pieces[1:]]
    return [Step(text=token, delay=delay) for token in tokens]


def _after(steps: Sequence[Step], continuation: str) -> Sequence[Step]:
    """The steps left once the text of a continuation has been emitted."""
    emitted = 0
    for index, step in enumerate(steps):
        if emitted >= len(continuation):
            return steps[index:]
        emitted += len(step.text)
    return []
