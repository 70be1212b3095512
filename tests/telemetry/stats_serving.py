"""A server (``app.start_server``) and its stats observer, with a scripted backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from llmrouter_server.backends.base import Backend
from llmrouter_server.backends.scripted import ScriptedBackend, Step
from llmrouter_server.config import Config
from llmrouter_server.errors import BackendStatusError
from llmrouter_server.telemetry.stats import StatsObserver
from tests.helpers import Served, serving

WORDS = ["one ", "two ", "three ", "four "]
"""What the scripted backend says to a plain prompt."""


def script(request: Any) -> list[Step]:
    """Four words; ``fail`` gets an HTTP 400 after one; ``stall`` stalls after one."""
    prompt = request.messages[-1].content
    if prompt == "fail":
        return [Step("one "), Step(error=BackendStatusError("fake", 400, "no such thing"))]
    if prompt == "stall":
        return [Step("one "), Step(stall=True)]
    return [Step(word, delay=0.01) for word in WORDS]


@asynccontextmanager
async def stats_serving(
    config: Config, backends: Mapping[str, Backend] | None = None
) -> AsyncIterator[tuple[Served, StatsObserver]]:
    """Serves ``config`` (a scripted backend ``fake`` unless ``backends``); yields the
    server and its stats observer."""
    backends = backends if backends is not None else {"fake": ScriptedBackend("fake", script)}
    async with serving(config, backends) as served:
        observers = served.server.generations.observers
        yield served, next(o for o in observers if isinstance(o, StatsObserver))
