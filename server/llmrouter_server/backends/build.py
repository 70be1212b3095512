"""Builds the configured backends."""

from __future__ import annotations

from llmrouter_server.backends.base import Backend
from llmrouter_server.config import Config, EmbeddedBackendConfig


def build_backends(config: Config) -> dict[str, Backend]:
    """One backend per ``backends`` entry; embedded models are loaded now."""
    # Imported here so a configuration without an embedded backend never loads llama.cpp.
    backends: dict[str, Backend] = {}
    for name, backend in config.backends.items():
        if isinstance(backend, EmbeddedBackendConfig):
            from llmrouter_server.backends.embedded import EmbeddedBackend

            backends[name] = EmbeddedBackend(name, backend)
        else:
            from llmrouter_server.backends.openai import OpenAIBackend

            backends[name] = OpenAIBackend(name, backend)
    return backends
