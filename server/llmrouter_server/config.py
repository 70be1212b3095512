"""Configuration: one YAML file, environment overrides, validated at start.

Precedence, highest first: ``LLMROUTER_*`` environment variables (nested keys
joined by ``__``, e.g. ``LLMROUTER_SERVER__PORT=50052``), the YAML file, the
defaults below. With no file the server serves the embedded model as the
default route on port 50051.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    Field,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from llmrouter_server.config_access import (
    PUBLIC_SERVICES as PUBLIC_SERVICES,
)
from llmrouter_server.config_access import (
    APIKeyConfig as APIKeyConfig,
)
from llmrouter_server.config_access import (
    AuthConfig as AuthConfig,
)
from llmrouter_server.config_access import (
    ClientCertificateConfig as ClientCertificateConfig,
)
from llmrouter_server.config_access import (
    IdentityLimits as IdentityLimits,
)
from llmrouter_server.config_access import (
    OnLimit as OnLimit,
)
from llmrouter_server.config_access import (
    Role as Role,
)
from llmrouter_server.config_access import (
    TLSConfig as TLSConfig,
)
from llmrouter_server.config_backends import (
    BACKEND_KINDS as BACKEND_KINDS,
)
from llmrouter_server.config_backends import (
    EMBEDDED_MODEL as EMBEDDED_MODEL,
)
from llmrouter_server.config_backends import (
    AnthropicBackendConfig as AnthropicBackendConfig,
)
from llmrouter_server.config_backends import (
    BackendConfig as BackendConfig,
)
from llmrouter_server.config_backends import (
    BreakerConfig as BreakerConfig,
)
from llmrouter_server.config_backends import (
    EmbeddedBackendConfig as EmbeddedBackendConfig,
)
from llmrouter_server.config_backends import (
    HTTPBackendConfig as HTTPBackendConfig,
)
from llmrouter_server.config_backends import (
    OpenAIBackendConfig as OpenAIBackendConfig,
)
from llmrouter_server.config_base import Section as _Section
from llmrouter_server.config_gateway import GatewayConfig
from llmrouter_server.errors import ConfigError
from llmrouter_server.values import MidStreamAction, RoutePolicy
from llmrouter_server.yaml_strict import DuplicateKey, StrictLoader

CONFIG_ENV = "LLMROUTER_CONFIG"
"""The environment variable naming the YAML file when ``--config`` is not given."""


class ServerConfig(_Section):
    """Where and how the gRPC server listens."""

    host: str = "127.0.0.1"
    """Interface to bind. The default accepts local clients only (plaintext, and
    open unless ``auth`` is set); a container or a Deployment sets ``0.0.0.0``."""
    port: int = Field(50051, ge=0, le=65535)
    """TCP port; 0 picks a free one."""
    max_receive_message_bytes: int = Field(4 * 1024 * 1024, gt=0)
    """Largest request message accepted; larger ones get RESOURCE_EXHAUSTED."""
    grace_period_seconds: float = Field(10.0, ge=0)
    """How long running generations may finish after SIGTERM."""


class LimitsConfig(_Section):
    """Bounds on what one request may ask for."""

    max_tokens_cap: int = Field(4096, gt=0)
    """Largest ``sampling.max_tokens`` a request may set."""
    default_max_tokens: int = Field(512, gt=0)
    """``max_tokens`` when a request does not set it."""
    max_input_bytes: int = Field(256 * 1024, gt=0)
    """Largest total size of prompt and messages, in UTF-8 bytes."""
    max_stop_sequences: int = Field(8, ge=0)
    """Most stop sequences one request may give."""
    max_stop_sequence_chars: int = Field(256, gt=0)
    """Longest stop sequence a request may give, in characters."""
    max_subscriptions_per_call: int = Field(16, gt=0)
    """Most generations one Subscribe call may follow at once."""
    max_watches_per_call: int = Field(1024, gt=0)
    """Most stream ids one Control call may watch by id at once."""
    max_calls_per_connection: int = Field(100, gt=0)
    """Most concurrent calls (HTTP/2 streams) one client connection may open."""
    max_messages: int = Field(256, gt=0)
    """Most chat messages one request may carry."""
    max_schema_bytes: int = Field(64 * 1024, gt=0)
    """Largest ``response_format.json_schema``, in UTF-8 bytes."""
    max_labels: int = Field(16, ge=0)
    """Most labels one generation may carry."""
    max_label_key_bytes: int = Field(63, gt=0)
    """Longest label key, in UTF-8 bytes."""
    max_label_value_bytes: int = Field(256, gt=0)
    """Longest label value, in UTF-8 bytes."""
    max_hold_seconds: float = Field(30.0, gt=0)
    """How long a BLOCK subscriber or a zero-credit consumer may hold a generation's
    producer back before it is disconnected (owners and admins only; others cannot hold)."""

    @model_validator(mode="after")
    def _default_within_cap(self) -> LimitsConfig:
        if self.default_max_tokens > self.max_tokens_cap:
            raise ValueError("default_max_tokens must not exceed max_tokens_cap")
        return self


class StreamsConfig(_Section):
    """Flow control, pausing and retention of generations."""

    window_events: int = Field(64, gt=1)
    """Unread events a lossless consumer may lag before the producer waits."""
    window_bytes: int = Field(64 * 1024, gt=1)
    """Unread event bytes a lossless consumer may lag before the producer waits."""
    retain_bytes_per_stream: int = Field(1024 * 1024, gt=0)
    """Event bytes kept per generation for replay; the oldest are evicted first."""
    retain_total_bytes: int = Field(64 * 1024 * 1024, gt=0)
    """Event bytes kept over all finished generations; the oldest go first."""
    retain_seconds: float = Field(300.0, ge=0)
    """How long a finished generation stays available for Subscribe and GetStream."""
    release_after_seconds: float = Field(30.0, gt=0)
    """How long a paused or stalled generation keeps its backend (a llama.cpp
    instance, an HTTP connection) before giving it back; it continues later."""
    release_contended_after_seconds: float = Field(0.5, ge=0)
    """How long a paused or stalled generation keeps its backend's slot while a
    generation whose caller reads waits for one (``backends.NAME.max_concurrency``
    reached): counted from when it stopped, or its caller stopped reading, so one
    stalled that long gives its slot to such a waiter at once (one per waiter). It
    continues later, as after ``release_after_seconds``, once its caller reads
    again. Waiters whose callers do not read take no slot from anyone; a caller
    that keeps reading is not stalled."""
    default_detach_seconds: float = Field(60.0, gt=0)
    """How long a detached generation waits for a consumer when the request gives no TTL."""
    max_detach_seconds: float = Field(600.0, gt=0)
    """The longest detach TTL a request may ask for."""


class TelemetryConfig(_Section):
    """Metrics, traces and the GetStats report."""

    metrics_port: int | None = Field(None, ge=0, le=65535)
    """Serve Prometheus text at ``/metrics`` on this HTTP port (same host as the
    gRPC port); unset serves none. ``make serve`` and the manifests use 9464."""
    metrics_host: str | None = None
    """The interface ``/metrics`` binds; empty uses ``server.host``. A sidecar keeps
    gRPC on the Pod's loopback and sets ``0.0.0.0`` here so Prometheus can scrape it
    (``/metrics`` serves only aggregate series: no text, no keys, no stream ids)."""
    otlp_endpoint: str | None = None
    """Export traces and metrics over OTLP (gRPC) to this endpoint, e.g.
    ``http://otel-collector:4317``; unset exports nothing and attempts nothing."""
    stats_window_seconds: float = Field(300.0, gt=0, le=86400)
    """How far back GetStats' recent figures (percentiles, rates, errors) look."""


class LoggingConfig(_Section):
    """The server's log lines."""

    format: Literal["text", "json"] = "text"
    """``text`` for people, ``json`` (one object per line) for log pipelines."""


MAX_ATTEMPTS_CAP = 20
"""The most attempts a route (or a request) may allow."""

MAX_TIMEOUT_SECONDS = 3600.0
"""The longest timeout a route or a request may set."""


class TargetConfig(_Section):
    """One backend and the model to ask it for."""

    backend: str
    """A key of ``backends``."""
    model: str
    """The model name sent to that backend."""
    weight: int = Field(1, ge=0, le=1_000_000)
    """Relative share under the ``weighted`` policy; 0 is used only as a fallback."""


class RetryConfig(_Section):
    """The wait before a route starts again from its first target."""

    initial_backoff_seconds: float = Field(0.2, gt=0, le=MAX_TIMEOUT_SECONDS)
    """The longest wait before the second round; each wait is drawn from [0, cap]."""
    max_backoff_seconds: float = Field(5.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    """The cap never exceeds this."""
    multiplier: float = Field(2.0, ge=1, le=10)
    """The cap grows by this factor each round (exponential backoff, full jitter)."""

    @model_validator(mode="after")
    def _ordered(self) -> RetryConfig:
        if self.max_backoff_seconds < self.initial_backoff_seconds:
            raise ValueError("max_backoff_seconds must not be below initial_backoff_seconds")
        return self


_Timeout = Annotated[float, Field(gt=0, le=MAX_TIMEOUT_SECONDS)]


class RouteConfig(_Section):
    """A named list of targets and how to use them."""

    targets: list[TargetConfig] = Field(min_length=1)
    """Targets, in order."""
    policy: RoutePolicy = RoutePolicy.FALLBACK
    """``fallback``, ``race``, ``weighted`` or ``merge``."""
    max_attempts: int = Field(3, ge=1, le=MAX_ATTEMPTS_CAP)
    """Attempts over all targets, the first included."""
    retry: RetryConfig = RetryConfig()
    """Backoff between rounds over the targets."""
    first_token_timeout_seconds: _Timeout | None = 60.0
    """An attempt with no token this long after it started fails (empty: no limit)."""
    idle_timeout_seconds: _Timeout | None = 30.0
    """An attempt silent this long after a token fails (empty: no limit)."""
    race_after_seconds: _Timeout = 2.0
    """``race``: start the next target when the first token is this late."""
    on_mid_stream_failure: MidStreamAction = MidStreamAction.CONTINUE
    """``continue``, ``restart`` or ``fail`` when a target fails after emitting text."""


def _default_backends() -> dict[str, BackendConfig]:
    return {"embedded": EmbeddedBackendConfig()}


def _default_routes() -> dict[str, RouteConfig]:
    target = TargetConfig(backend="embedded", model=EMBEDDED_MODEL)
    return {EMBEDDED_MODEL: RouteConfig(targets=[target])}


class Config(BaseSettings):
    """The whole configuration; see the module docstring for precedence."""

    model_config = SettingsConfigDict(
        env_prefix="LLMROUTER_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    server: ServerConfig = ServerConfig()
    """The listener."""
    limits: LimitsConfig = LimitsConfig()
    """Request bounds."""
    streams: StreamsConfig = StreamsConfig()
    """Flow control, pausing and retention."""
    backends: dict[str, BackendConfig] = Field(default_factory=_default_backends)
    """Backends by name."""
    routes: dict[str, RouteConfig] = Field(default_factory=_default_routes)
    """Routes by the name clients put in ``model``."""
    default_route: str = EMBEDDED_MODEL
    """The route used when a request names no model."""
    telemetry: TelemetryConfig = TelemetryConfig()
    """Metrics, traces and GetStats."""
    logging: LoggingConfig = LoggingConfig()
    """Log format."""
    tls: TLSConfig | None = None
    """TLS (and mutual TLS); unset serves plaintext."""
    auth: AuthConfig | None = None
    """Authentication and tenancy; unset lets every caller see everything."""
    gateway: GatewayConfig = GatewayConfig()
    """The WebSocket gateway for browsers; off unless ``gateway.port`` is set."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Lets the environment override the file (passed as init values)."""
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _references_resolve(self) -> Config:
        for name, route in self.routes.items():
            for index, target in enumerate(route.targets):
                backend = self.backends.get(target.backend)
                if backend is None:
                    raise ValueError(
                        f"routes.{name}.targets.{index}.backend: unknown backend "
                        f"{target.backend!r} (configured: {', '.join(self.backends)})"
                    )
                if isinstance(backend, EmbeddedBackendConfig) and target.model != backend.model:
                    raise ValueError(
                        f"routes.{name}.targets.{index}.model: backend {target.backend!r} "
                        f"serves only {backend.model!r}"
                    )
        if self.default_route not in self.routes:
            raise ValueError(
                f"default_route: unknown route {self.default_route!r} "
                f"(configured: {', '.join(self.routes)})"
            )
        return self


def load_config(path: str | Path | None = None) -> Config:
    """Reads and validates the configuration.

    Args:
        path: A YAML file; None uses ``$LLMROUTER_CONFIG`` or no file.

    Raises:
        ConfigError: The file is unreadable or a key is invalid; the message
            names the file and the key.
    """
    path = path or os.environ.get(CONFIG_ENV) or None
    values = _read_yaml(Path(path)) if path else {}
    try:
        return Config(**values)
    except ValidationError as exc:
        where = f"{path}: " if path else ""
        raise ConfigError(where + _describe(exc)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=StrictLoader)  # noqa: S506 - a SafeLoader
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    except DuplicateKey as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: it nests too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return data


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = _key(error["loc"])
        if error["type"] == "union_tag_invalid" and key.startswith("backends."):
            # The discriminator's wording names a Python function; say what the file can fix.
            tag = error.get("ctx", {}).get("tag")
            problems.append(f"{key}.kind: unknown kind {tag!r} ({', '.join(BACKEND_KINDS)})")
            continue
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{key}: {message}" if key else message)
    return "invalid configuration: " + "; ".join(problems)


def _key(loc: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in loc]
    # A backend's location carries its ``kind`` tag (backends.NAME.KIND.key): drop it.
    if len(parts) > 3 and parts[0] == "backends" and parts[2] in BACKEND_KINDS:
        del parts[2]
    return ".".join(parts)
