"""Model backends: one interface, one module per provider, one scripted fake."""

from llmrouter_server.backends.base import Backend, BackendRequest, Delta

__all__ = ["Backend", "BackendRequest", "Delta"]
