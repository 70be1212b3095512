"""Route and backend configuration: errors naming the key, and the plan a route describes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmrouter_server.backends.scripted import ScriptedBackend
from llmrouter_server.config import AnthropicBackendConfig, Config, load_config
from llmrouter_server.errors import ConfigError
from llmrouter_server.routing.route import Backoff, Plan, plan_of
from llmrouter_server.routing.router import build_router
from llmrouter_server.values import MidStreamAction, RoutePolicy

BACKENDS = """
backends:
  a: {kind: openai, base_url: "http://a:8000/v1", api_key_env: null}
  b: {kind: openai, base_url: "http://b:8000/v1", api_key_env: null}
default_route: r
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("LLMROUTER_"):
            monkeypatch.delenv(name)


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "llmrouter.yaml"
    path.write_text(text)
    return load_config(path)


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    return str(caught.value)


def _route(tmp_path: Path, route: str) -> str:
    """The error of a configuration with backends a and b and route ``r``."""
    return _refused(tmp_path, BACKENDS + "routes:\n  r: " + route + "\n")


def test_unknown_policy_names_the_key(tmp_path: Path) -> None:
    message = _route(tmp_path, "{policy: random, targets: [{backend: a, model: m}]}")

    assert message == (
        f"{tmp_path / 'llmrouter.yaml'}: invalid configuration: routes.r.policy: "
        "Input should be 'fallback', 'race', 'weighted' or 'merge'"
    )


def test_unknown_backend_names_the_target(tmp_path: Path) -> None:
    message = _route(tmp_path, "{targets: [{backend: nope, model: m}]}")

    assert message == (
        f"{tmp_path / 'llmrouter.yaml'}: invalid configuration: routes.r.targets.0.backend: "
        "unknown backend 'nope' (configured: a, b)"
    )


def test_unknown_backend_in_a_later_target_names_its_index(tmp_path: Path) -> None:
    message = _route(tmp_path, "{targets: [{backend: a, model: m}, {backend: c, model: m}]}")

    assert message.endswith(
        "invalid configuration: routes.r.targets.1.backend: unknown backend 'c' (configured: a, b)"
    )


@pytest.mark.parametrize(("value", "bound"), [(0, "greater than or equal to 1"),
                                              (21, "less than or equal to 20")])  # fmt: skip
def test_max_attempts_out_of_range_names_the_key(tmp_path: Path, value: int, bound: str) -> None:
    message = _route(tmp_path, f"{{max_attempts: {value}, targets: [{{backend: a, model: m}}]}}")

    assert message.endswith(
        f"invalid configuration: routes.r.max_attempts: Input should be {bound}"
    )


def test_max_backoff_below_initial_names_the_retry_section(tmp_path: Path) -> None:
    message = _route(
        tmp_path,
        "{retry: {initial_backoff_seconds: 2, max_backoff_seconds: 1},"
        " targets: [{backend: a, model: m}]}",
    )

    assert message.endswith(
        "invalid configuration: routes.r.retry: "
        "max_backoff_seconds must not be below initial_backoff_seconds"
    )


def test_negative_first_token_timeout_names_the_key(tmp_path: Path) -> None:
    message = _route(
        tmp_path, "{first_token_timeout_seconds: -1, targets: [{backend: a, model: m}]}"
    )

    assert message.endswith(
        "invalid configuration: routes.r.first_token_timeout_seconds: "
        "Input should be greater than 0"
    )


def test_route_without_targets_names_the_key(tmp_path: Path) -> None:
    message = _route(tmp_path, "{targets: []}")

    assert message.endswith(
        "invalid configuration: routes.r.targets: "
        "List should have at least 1 item after validation, not 0"
    )


def test_anthropic_backend_parses_with_its_defaults(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        """
backends:
  claude: {kind: anthropic}
routes:
  r: {targets: [{backend: claude, model: claude-3-5-haiku-latest}]}
default_route: r
""",
    )

    backend = config.backends["claude"]
    assert backend == AnthropicBackendConfig()
    assert isinstance(backend, AnthropicBackendConfig)
    assert (backend.base_url, backend.api_key_env, backend.anthropic_version) == (
        "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY", "2023-06-01"
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_base_url_that_is_no_url_names_the_backend_key(tmp_path: Path, kind: str) -> None:
    message = _refused(
        tmp_path,
        f"""
backends:
  up: {{kind: {kind}, base_url: not-a-url}}
routes:
  r: {{targets: [{{backend: up, model: m}}]}}
default_route: r
""",
    )

    assert message == (
        f"{tmp_path / 'llmrouter.yaml'}: invalid configuration: backends.up.base_url: "
        "must be an http:// or https:// URL, got 'not-a-url'"
    )


FULL_ROUTE = (
    BACKENDS
    + """
routes:
  r:
    policy: weighted
    targets:
      - {backend: a, model: small, weight: 3}
      - {backend: b, model: large, weight: 0}
    max_attempts: 7
    retry: {initial_backoff_seconds: 0.5, max_backoff_seconds: 4, multiplier: 3}
    first_token_timeout_seconds: 12.5
    idle_timeout_seconds: 4
    race_after_seconds: 1.5
    on_mid_stream_failure: restart
"""
)


def test_every_route_key_reaches_the_plan(tmp_path: Path) -> None:
    config = _load(tmp_path, FULL_ROUTE)

    assert plan_of(config.routes["r"]) == Plan(
        policy=RoutePolicy.WEIGHTED,
        max_attempts=7,
        backoff=Backoff(initial=0.5, maximum=4.0, multiplier=3.0),
        first_token_timeout=12.5,
        idle_timeout=4.0,
        race_after=1.5,
        on_mid_stream_failure=MidStreamAction.RESTART,
        deadline=None,
    )


def test_route_targets_and_weights_reach_the_router(tmp_path: Path) -> None:
    config = _load(tmp_path, FULL_ROUTE)
    backends = {"a": ScriptedBackend("a", []), "b": ScriptedBackend("b", [])}

    route = build_router(config, backends).resolve("r")

    assert [(t.backend.name, t.model, t.weight) for t in route.targets] == [
        ("a", "small", 3), ("b", "large", 0)
    ]  # fmt: skip
    assert route.plan == plan_of(config.routes["r"])


def test_empty_timeouts_are_no_limit(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        BACKENDS
        + """
routes:
  r:
    targets: [{backend: a, model: m}]
    first_token_timeout_seconds: null
    idle_timeout_seconds: null
""",
    )

    plan = plan_of(config.routes["r"])
    assert (plan.first_token_timeout, plan.idle_timeout) == (None, None)


def test_route_defaults_reach_the_plan(tmp_path: Path) -> None:
    config = _load(tmp_path, BACKENDS + "routes:\n  r: {targets: [{backend: a, model: m}]}\n")

    assert plan_of(config.routes["r"]) == Plan(
        policy=RoutePolicy.FALLBACK,
        max_attempts=3,
        backoff=Backoff(initial=0.2, maximum=5.0, multiplier=2.0),
        first_token_timeout=60.0,
        idle_timeout=30.0,
        race_after=2.0,
        on_mid_stream_failure=MidStreamAction.CONTINUE,
    )
