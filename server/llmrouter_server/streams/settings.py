"""What the server allows one generation, fixed when it starts.

The service derives them from the configuration and the request (its
effective ``max_tokens`` and detach TTL); a generation and the parts it holds
(replay log, gate, attachment) read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmrouter_server.streams.log import Window


@dataclass(frozen=True, slots=True)
class Settings:
    """How much one generation may produce, buffer and keep."""

    max_tokens: int
    """The effective token limit."""
    window: Window
    """How far the caller may fall behind before the producer waits."""
    retain_bytes: int
    """Event bytes kept for replay."""
    release_after: float
    """Seconds a paused or stalled generation keeps its backend before giving it back."""
    detach_after: float | None = None
    """Seconds the generation waits for a consumer once its caller left; None cancels."""
    release_contended_after: float | None = None
    """``release_after`` while another generation waits for a slot of its backend;
    None is ``release_after``."""
