"""llmrouter: a gRPC service that routes and streams LLM generations."""

__version__ = "0.1.0"
