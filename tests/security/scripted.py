"""The scripted routes most security tests serve.

``fake-model`` answers ``ANSWER`` at once; ``held-model`` answers its first
word at once and the rest once the test releases it, so a call can be kept
open mid-answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from llmrouter_server.backends.base import Backend, BackendRequest, Delta
from llmrouter_server.backends.scripted import ScriptedBackend, words
from llmrouter_server.config import Config
from llmrouter_server.values import FinishReason, Usage
from tests.helpers import scripted_config

ANSWER = "the keeper lit the lamp"
"""What the ``fake-model`` route answers."""

HELD_ANSWER = "a storm came over the sea"
"""What the ``held-model`` route answers unless told otherwise."""


def config(**overrides: Any) -> Config:
    """A loopback configuration with the ``fake-model`` (default) and ``held-model`` routes."""
    return scripted_config("fake", "held", **overrides)


class HeldBackend:
    """Answers word by word: the first word at once, the rest once ``release`` is set."""

    kind = "scripted"
    supports_json = False
    max_concurrency = 4

    def __init__(self, answer: str = HELD_ANSWER) -> None:
        """A backend named ``held`` that answers ``answer``."""
        self.name = "held"
        self.release = asyncio.Event()
        self._answer = answer

    async def stream(self, request: BackendRequest) -> AsyncGenerator[Delta, None]:
        steps = words(self._answer)
        for index, step in enumerate(steps):
            if index == 1:
                await self.release.wait()
            await asyncio.sleep(0)
            yield Delta(text=step.text, token_count=1)
        yield Delta(finish_reason=FinishReason.STOP, usage=Usage(1, len(steps)))

    async def close(self) -> None:
        """Nothing to release."""


def backends(held: HeldBackend | None = None) -> dict[str, Backend]:
    """The backends of ``config``'s routes."""
    return {"fake": ScriptedBackend("fake", words(ANSWER)), "held": held or HeldBackend()}
