"""The router: resolves a model name to a route and streams one attempt.

A route is data: a name, a policy and an ordered list of targets. This
version runs the first target of a route; retries, fallback (also
mid-stream), races and circuit breakers build on ``stream`` later, yielding
the same items plus attempt and fallback notices.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, replace

from llmrouter_server.backends.base import Backend, BackendRequest, Delta
from llmrouter_server.config import Config
from llmrouter_server.errors import NotFound
from llmrouter_server.routing.slots import Slots


@dataclass(frozen=True, slots=True)
class Target:
    """One backend and the model to ask it for."""

    backend: Backend
    """The backend."""
    model: str
    """The model name the backend knows."""
    slots: Slots
    """The backend's concurrency limit, shared by every target on it."""


@dataclass(frozen=True, slots=True)
class Route:
    """A named, ordered list of targets and how to use them."""

    name: str
    """What clients put in ``model``."""
    policy: str
    """How the targets are used (``fallback``)."""
    targets: tuple[Target, ...]
    """Targets in order."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """The attempt waits for a slot on its target."""

    position: int
    """1 means next in line."""


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """An attempt got a slot and asked its backend for text."""

    target: Target
    """Where the attempt runs."""
    attempt: int
    """Counting from 1."""


RouteItem = Waiting | AttemptStarted | Delta


class Router:
    """Resolves model names and streams generations from targets."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        default_route: str,
        backends: Mapping[str, Backend],
        slots: Mapping[str, Slots],
    ) -> None:
        self._routes = dict(routes)
        self._default = default_route
        self._backends = dict(backends)
        self._slots = dict(slots)

    @property
    def default_route(self) -> str:
        """The route used when a request names no model."""
        return self._default

    def backend(self, name: str) -> Backend:
        """The backend configured under ``name``."""
        return self._backends[name]

    def routes(self) -> list[Route]:
        """Every configured route, in configuration order."""
        return list(self._routes.values())

    def resolve(self, model: str) -> Route:
        """Finds the route for a model name.

        ``model`` is a route name, ``backend/model`` naming one target
        directly, or empty for the default route.

        Raises:
            NotFound: Naming the model and what is available.
        """
        name = model or self._default
        if name in self._routes:
            return self._routes[name]
        backend_name, _, backend_model = name.partition("/")
        backend = self._backends.get(backend_name)
        if backend is not None and backend_model:
            target = Target(backend, backend_model, self._slots[backend_name])
            return Route(name, "fallback", (target,))
        raise NotFound(
            f"start.model: unknown model {name!r}; available routes: "
            f"{', '.join(self._routes)} (or BACKEND/MODEL with backend one of "
            f"{', '.join(self._backends)})",
            field="start.model",
        )

    async def stream(
        self, route: Route, request: BackendRequest
    ) -> AsyncGenerator[RouteItem, None]:
        """Streams one generation from the route's first target.

        Yields ``Waiting`` while queued for a slot, then ``AttemptStarted``,
        then the backend's deltas. The slot is released when the stream ends
        or is closed.
        """
        target = route.targets[0]
        async with aclosing(target.slots.acquire()) as positions:
            async for position in positions:
                yield Waiting(position)
        try:
            yield AttemptStarted(target, attempt=1)
            backend_request = replace(request, model=target.model)
            async with aclosing(target.backend.stream(backend_request)) as deltas:
                async for delta in deltas:
                    yield delta
        finally:
            target.slots.release()

    async def close(self) -> None:
        """Closes every backend."""
        for backend in self._backends.values():
            await backend.close()


def build_router(config: Config, backends: Mapping[str, Backend]) -> Router:
    """Builds the router of a configuration over already-built backends."""
    slots = {name: Slots(backend.max_concurrency) for name, backend in backends.items()}
    routes = {
        name: Route(
            name,
            route.policy,
            tuple(
                Target(backends[target.backend], target.model, slots[target.backend])
                for target in route.targets
            ),
        )
        for name, route in config.routes.items()
    }
    return Router(routes, config.default_route, backends, slots)
