"""Python client for llmrouter; the generated stubs live in ``llmrouter.v1``."""
