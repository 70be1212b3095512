"""Builds the configured backends."""

from __future__ import annotations

from llmrouter_server.backends.base import Backend
from llmrouter_server.config import (
    AnthropicBackendConfig,
    BackendConfig,
    Config,
    EmbeddedBackendConfig,
)


def build_backends(config: Config) -> dict[str, Backend]:
    """One backend per ``backends`` entry; embedded models are loaded now.

    Raises:
        ConfigError: A backend cannot be built: a model file is missing, or an
            ``api_key_file`` cannot be read (the message names the key, never
            the file's content).
    """
    return {name: _build(name, backend) for name, backend in config.backends.items()}


def _build(name: str, config: BackendConfig) -> Backend:
    # Each kind is imported in its branch, so a configuration without an
    # embedded backend never loads llama.cpp.
    if isinstance(config, EmbeddedBackendConfig):
        from llmrouter_server.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(name, config)
    if isinstance(config, AnthropicBackendConfig):
        from llmrouter_server.backends.anthropic import AnthropicBackend

        return AnthropicBackend(name, config)
    from llmrouter_server.backends.openai import OpenAIBackend

    return OpenAIBackend(name, config)
