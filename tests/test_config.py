"""Configuration: defaults, the YAML file, environment overrides, errors naming the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmrouter_server.config import EmbeddedBackendConfig, OpenAIBackendConfig, load_config
from llmrouter_server.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("LLMROUTER_"):
            monkeypatch.delenv(name)


def test_no_file_serves_the_embedded_model_on_50051() -> None:
    config = load_config()

    assert config.server.port == 50051
    assert config.default_route == "smollm2-135m-instruct"
    assert config.backends == {"embedded": EmbeddedBackendConfig()}
    assert [t.backend for t in config.routes["smollm2-135m-instruct"].targets] == ["embedded"]


def test_yaml_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "llmrouter.yaml"
    path.write_text(
        """
server: {port: 6000}
backends:
  vllm: {kind: openai, base_url: "http://vllm:8000/v1", api_key_env: null}
routes:
  chat: {targets: [{backend: vllm, model: qwen}]}
default_route: chat
"""
    )

    config = load_config(path)

    assert config.server.port == 6000
    assert config.backends["vllm"] == OpenAIBackendConfig(
        base_url="http://vllm:8000/v1", api_key_env=None
    )
    assert config.default_route == "chat"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "llmrouter.yaml"
    path.write_text("server: {port: 6000, host: 127.0.0.1}\n")
    monkeypatch.setenv("LLMROUTER_CONFIG", str(path))
    monkeypatch.setenv("LLMROUTER_SERVER__PORT", "7000")

    config = load_config()

    assert (config.server.host, config.server.port) == ("127.0.0.1", 7000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("servr: {port: 1}\n", "servr: Extra inputs are not permitted"),
        ("server: {port: many}\n", "server.port: Input should be a valid integer"),
        ("server: {port: 70000}\n", "server.port: Input should be less than or equal to 65535"),
        (
            "limits: {default_max_tokens: 0}\n",
            "limits.default_max_tokens: Input should be greater than 0",
        ),
        (
            "backends: {x: {kind: embedded, instances: 0}}\n",
            "backends.x.instances: Input should be greater than 0",
        ),
        (
            "backends: {x: {kind: grpc}}\n",
            "backends.x.kind: unknown kind 'grpc' (embedded, openai, anthropic)",
        ),
        (
            "routes: {r: {targets: [{backend: nope, model: m}]}}\n",
            "routes.r.targets.0.backend: unknown backend 'nope'",
        ),
        ("default_route: nope\n", "default_route: unknown route 'nope'"),
        ("- a list\n", "the top level must be a mapping"),
        ("server: [\n", "not valid YAML"),
    ],
)
def test_bad_file_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            """server: {port: 6000}
routes:
  fast: {targets: [{backend: embedded, model: smollm2-135m-instruct}]}
  slow: {targets: [{backend: embedded, model: smollm2-135m-instruct}]}
default_route: fast
limits:
  max_tokens_cap: 100
routes:
  fast: {targets: [{backend: embedded, model: smollm2-135m-instruct}]}
""",
            "duplicate key routes (lines 2 and 8)",
        ),
        (
            """routes:
  fast:
    targets: [{backend: embedded, model: smollm2-135m-instruct}]
  slow:
    targets: [{backend: embedded, model: smollm2-135m-instruct}]
  fast:
    targets: [{backend: embedded, model: smollm2-135m-instruct}]
""",
            "duplicate key routes.fast (lines 2 and 6)",
        ),
        (
            """routes:
  fast:
    targets:
      - backend: embedded
        model: smollm2-135m-instruct
        backend: other
""",
            "duplicate key routes.fast.targets.0.backend (lines 4 and 6)",
        ),
        ("server: {port: 1, port: 2}\n", "duplicate key server.port (lines 1 and 1)"),
    ],
    ids=["top level", "a route", "in a list", "flow style"],
)
def test_a_key_given_twice_stops_start_up_naming_it(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(caught.value) == f"{path}: {message}"


def test_anchors_aliases_and_overridden_merge_keys_are_no_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        """backends:
  a: &http {kind: openai, base_url: "http://a:1/v1", api_key_env: null}
  b: {<<: *http, base_url: "http://b:1/v1"}
  c: *http
routes: {r: {targets: [{backend: a, model: m}]}}
default_route: r
"""
    )

    backends = load_config(path).backends

    assert [backend.base_url for backend in backends.values()] == [  # type: ignore[union-attr]
        "http://a:1/v1", "http://b:1/v1", "http://a:1/v1"
    ]  # fmt: skip


def test_an_unknown_backend_kind_from_the_environment_names_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMROUTER_BACKENDS__EMBEDDED__KIND", "grpc")

    with pytest.raises(ConfigError) as caught:
        load_config()

    assert str(caught.value) == (
        "invalid configuration: backends.embedded.kind: unknown kind 'grpc' "
        "(embedded, openai, anthropic)"
    )


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")


def test_environment_sets_one_key_of_the_default_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMROUTER_BACKENDS__EMBEDDED__INSTANCES", "2")

    assert load_config().backends == {"embedded": EmbeddedBackendConfig(instances=2)}


def test_bad_environment_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMROUTER_LIMITS__MAX_TOKENS_CAP", "-1")

    with pytest.raises(
        ConfigError, match=r"limits\.max_tokens_cap: Input should be greater than 0"
    ):
        load_config()
