"""The router: resolves a model name to a route and runs the route's policy.

A route is data (``route.py``); the attempt loop is ``runner.py`` (FALLBACK,
WEIGHTED, and RACE through ``race.py``), MERGE is ``merge.py``. Each target
has one ``TargetHealth`` (circuit breaker, Retry-After) shared by every
route that uses it.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace

from llmrouter_server.backends.base import Backend, BackendRequest
from llmrouter_server.config import BreakerConfig, Config, TargetConfig
from llmrouter_server.errors import InvalidArgument, NotFound
from llmrouter_server.routing.breaker import TargetHealth
from llmrouter_server.routing.items import RouteItem
from llmrouter_server.routing.merge import merge
from llmrouter_server.routing.route import Overrides, Plan, Route, Target, plan_of, tighten
from llmrouter_server.routing.runner import Run
from llmrouter_server.routing.slots import QueueClaim, Slots
from llmrouter_server.routing.transcript import Transcript
from llmrouter_server.values import RoutePolicy


class Router:
    """Resolves model names and runs generations over routes."""

    def __init__(  # noqa: PLR0913 - the router is built once, from all of these
        self,
        routes: Mapping[str, Route],
        default_route: str,
        backends: Mapping[str, Backend],
        slots: Mapping[str, Slots],
        health: TargetHealthBook,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._routes = dict(routes)
        self._default = default_route
        self._backends = dict(backends)
        self._slots = dict(slots)
        self.health = health
        self._rng = rng or random.Random()  # noqa: S311 - jitter and weights, not secrets

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

    def resolve(self, model: str, *, json_output: bool = False) -> Route:
        """Finds the route for a model name.

        ``model`` is a route name, ``backend/model`` naming one target
        directly, or empty for the default route.

        Raises:
            NotFound: Naming the model and what is available.
            InvalidArgument: No target of the route can produce JSON.
        """
        name = model or self._default
        route = self._routes.get(name) or self._direct(name)
        if not json_output:
            return route
        usable = tuple(t for t in route.targets if t.backend.supports_json)
        if not usable:
            raise InvalidArgument(
                "start.response_format.format",
                f"no target of route {name!r} can constrain its output to JSON",
            )
        return route if len(usable) == len(route.targets) else Route(name, usable, route.plan)

    def plan(
        self,
        route: Route,
        overrides: Overrides,
        deadline: float | None,
        queue: QueueClaim | None = None,
    ) -> Plan:
        """The route's plan tightened by a request's overrides.

        Args:
            route: The route.
            overrides: The request's changes to the route's plan.
            deadline: The caller's deadline (``time.monotonic``).
            queue: Whose generation it is, for backend queue shares.

        Raises:
            InvalidArgument: An override loosens the route, naming the field.
        """
        plan = tighten(route.plan, overrides, deadline)
        return plan if queue is None else replace(plan, queue=queue)

    def stream(
        self,
        route: Route,
        plan: Plan,
        request: BackendRequest,
        transcript: Transcript,
        stream_id: str = "",
    ) -> AsyncGenerator[RouteItem, None]:
        """Runs the plan over the route, continuing the transcript.

        Yields queue positions, attempt notices and deltas (``Tagged`` ones
        under MERGE). Closing the stream closes the backend stream; a later
        call with the same transcript continues after its text.
        """
        run = Run(route, plan, request, transcript, stream_id=stream_id, rng=self._rng)
        if plan.policy is RoutePolicy.MERGE:
            return merge(run)
        return run.items()

    async def close(self) -> None:
        """Closes every backend."""
        for backend in self._backends.values():
            await backend.close()

    def _direct(self, name: str) -> Route:
        backend_name, _, backend_model = name.partition("/")
        backend = self._backends.get(backend_name)
        served = getattr(backend, "model", None)  # a backend that serves one model only
        if backend is None or not backend_model or served not in (None, backend_model):
            raise NotFound(
                f"start.model: unknown model {name!r}; available routes: "
                f"{', '.join(self._routes)} (or BACKEND/MODEL with backend one of "
                f"{', '.join(self._backends)})",
                field="start.model",
            )
        target = Target(
            backend, backend_model, self._slots[backend_name],
            self.health.get(backend_name, backend_model),
        )  # fmt: skip
        return Route(name, (target,))


class TargetHealthBook:
    """One ``TargetHealth`` per backend and model, made on first use."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._health: dict[str, TargetHealth] = {}

    def get(self, backend: str, model: str) -> TargetHealth:
        """The health of ``backend/model``."""
        name = f"{backend}/{model}"
        if name not in self._health:
            configured = self._config.backends.get(backend)
            breaker = configured.circuit_breaker if configured else BreakerConfig()
            self._health[name] = TargetHealth(
                name, breaker.failure_threshold, breaker.cooldown_seconds
            )
        return self._health[name]

    def all(self) -> list[TargetHealth]:
        """Every target's health made so far."""
        return list(self._health.values())


def _max_queued(config: Config, backend: str) -> int | None:
    """``backends.NAME.max_queued``; None (unbounded) for a backend not in the configuration."""
    configured = config.backends.get(backend)
    return None if configured is None else configured.max_queued


def _target(
    config: TargetConfig,
    backends: Mapping[str, Backend],
    slots: Mapping[str, Slots],
    health: TargetHealthBook,
) -> Target:
    backend = config.backend
    return Target(
        backends[backend], config.model, slots[backend], health.get(backend, config.model),
        config.weight,
    )  # fmt: skip


def build_router(config: Config, backends: Mapping[str, Backend]) -> Router:
    """Builds the router of a configuration over already-built backends."""
    slots = {
        name: Slots(backend.max_concurrency, _max_queued(config, name), name)
        for name, backend in backends.items()
    }
    health = TargetHealthBook(config)
    routes = {
        name: Route(
            name,
            tuple(_target(t, backends, slots, health) for t in route.targets),
            plan_of(route),
        )
        for name, route in config.routes.items()
    }
    return Router(routes, config.default_route, backends, slots, health)
