"""The domain entry point the gRPC layer calls: start generations, list models."""

from __future__ import annotations

import asyncio
import secrets

from llmrouter_server.config import LimitsConfig
from llmrouter_server.errors import Unavailable
from llmrouter_server.routing.router import Route, Router
from llmrouter_server.streams.generation import Budget, Generation
from llmrouter_server.streams.registry import StreamRegistry
from llmrouter_server.streams.request import GenerationRequest, validate


class Generations:
    """Starts, tracks and stops generations."""

    def __init__(self, router: Router, limits: LimitsConfig) -> None:
        self.router = router
        self.registry = StreamRegistry()
        self._limits = limits
        self._accepting = True

    def start(self, request: GenerationRequest) -> Generation:
        """Validates, routes and starts a generation.

        Raises:
            InvalidArgument: A field is wrong.
            NotFound: The model is unknown.
            AlreadyExists: The client-chosen stream id is taken.
            Unavailable: The server is shutting down.
        """
        if not self._accepting:
            raise Unavailable("the server is shutting down; retry on another replica")
        max_tokens = validate(request, self._limits)
        route = self.router.resolve(request.model)
        stream_id = request.stream_id or f"gen-{secrets.token_hex(8)}"
        budget = Budget(max_tokens=max_tokens, buffer_events=self._limits.buffer_events)
        generation = Generation(stream_id, request, budget, route, self.router)
        self.registry.add(generation)
        generation.start(on_done=lambda done: self.registry.remove(done.stream_id))
        return generation

    def routes(self) -> list[Route]:
        """Every configured route."""
        return self.router.routes()

    def stop_accepting(self) -> None:
        """Refuses new generations from now on."""
        self._accepting = False

    async def drain(self, grace: float) -> None:
        """Waits up to ``grace`` seconds for running generations to finish."""
        running = [asyncio.ensure_future(generation.wait()) for generation in self.registry]
        if running:
            _, pending = await asyncio.wait(running, timeout=grace)
            for waiter in pending:
                waiter.cancel()

    async def cancel_all(self) -> None:
        """Ends every running generation with UNAVAILABLE and its offset."""
        running = list(self.registry)
        for generation in running:
            generation.cancel(Unavailable("the server is shutting down; resume elsewhere"))
        await asyncio.gather(*(generation.wait() for generation in running))

    async def close(self) -> None:
        """Cancels what still runs and closes the backends."""
        self.stop_accepting()
        await self.cancel_all()
        await self.router.close()
