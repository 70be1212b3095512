"""What a client asks for, in domain terms, and its validation.

Field names in error messages are the contract's (``start.sampling.max_tokens``)
so a client can find the field at fault without reading server code. A
``json_schema`` is checked by ``schema_check.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llmrouter_server.backends.base import BackendRequest
from llmrouter_server.config import LimitsConfig
from llmrouter_server.errors import InvalidArgument
from llmrouter_server.routing.route import Overrides
from llmrouter_server.shaping.coalesce import MAX_CHARS, MAX_INTERVAL, CoalesceMode, Coalescing
from llmrouter_server.streams.schema_check import check_schema
from llmrouter_server.values import Message, Role, Sampling

SHOWN_KEY_CHARS = 32
"""Characters of a refused label key an error message repeats."""

STREAM_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""What a client-chosen stream id may look like."""


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """What each chunk event carries."""

    include_progress: bool = False
    """Attach progress to every chunk."""
    include_metadata: bool = False
    """Attach model, backend, attempt, target, latency and timestamp to every chunk."""
    include_token_ids: bool = False
    """Attach token ids where the backend exposes them."""
    coalescing: Coalescing = field(default_factory=Coalescing)
    """How pieces are merged into chunk events."""


@dataclass(frozen=True, slots=True)
class Flow:
    """How events are paced to one consumer."""

    credit: bool = False
    """CREDIT flow: send only against granted credits. False is AUTO."""
    initial_credits: int = 0
    """CREDIT flow: credits granted up front."""

    @property
    def credits(self) -> int | None:
        """The credits a cursor starts with; None in AUTO flow (no credit counting)."""
        return self.initial_credits if self.credit else None


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation as the client asked for it."""

    prompt: str = ""
    """A single user message, or empty when ``messages`` is used."""
    messages: tuple[Message, ...] = ()
    """The conversation, or empty when ``prompt`` is used."""
    stream_id: str = ""
    """A client-chosen id, or empty for a server-chosen one."""
    model: str = ""
    """A route name or ``backend/model``; empty for the default route."""
    sampling: Sampling = field(default_factory=Sampling)
    """Token selection."""
    stop: tuple[str, ...] = ()
    """Stop sequences."""
    json_output: bool = False
    """Ask for a JSON value."""
    json_schema: str = ""
    """A JSON Schema the output must satisfy (JSON output only)."""
    options: StreamOptions = field(default_factory=StreamOptions)
    """What each chunk carries."""
    labels: tuple[tuple[str, str], ...] = ()
    """Caller labels."""
    flow: Flow = field(default_factory=lambda: Flow())
    """How events are paced to the caller."""
    detach: bool = False
    """Keep running when the caller leaves (DETACH); False cancels (CANCEL)."""
    detach_seconds: float | None = None
    """DETACH: how long to wait for a consumer; None takes the server's default."""
    routing: Overrides = field(default_factory=Overrides)
    """Changes to the route's plan; they may only tighten it."""
    deadline: float | None = None
    """The caller's deadline (``time.monotonic``); no retry waits past it."""
    trace_context: tuple[tuple[str, str], ...] = ()
    """The caller's W3C trace context as it came (``traceparent``, ``tracestate``
    pairs); the generation's trace continues it. Empty starts a new trace."""

    def chat(self) -> tuple[Message, ...]:
        """The conversation to send to a backend."""
        return self.messages or (Message(Role.USER, self.prompt),)

    def retained_bytes(self) -> int:
        """UTF-8 bytes of what a generation keeps of the request: the input,
        schema, stop sequences, labels, stream id and trace context."""
        texts = [
            self.prompt,
            self.json_schema,
            self.stream_id,
            *(message.content for message in self.messages),
            *self.stop,
            *(part for label in self.labels for part in label),
            *(part for pair in self.trace_context for part in pair),
        ]
        return sum(len(text.encode()) for text in texts)

    def backend_request(
        self, max_tokens: int, trace_headers: tuple[tuple[str, str], ...] = ()
    ) -> BackendRequest:
        """What every attempt asks for; routing sets the model and the continuation.

        Args:
            max_tokens: The effective token limit.
            trace_headers: The generation's trace context, for HTTP upstreams.
        """
        return BackendRequest(
            model="",
            messages=self.chat(),
            max_tokens=max_tokens,
            sampling=self.sampling,
            stop=self.stop,
            json_output=self.json_output,
            json_schema=self.json_schema,
            want_token_ids=self.options.include_token_ids,
            merge_reads=(
                self.options.coalescing.mode in _MERGING and not self.options.include_token_ids
            ),
            trace_headers=trace_headers,
        )


_MERGING = frozenset({CoalesceMode.ADAPTIVE, CoalesceMode.TIME})
"""Coalescing that may take the tokens of one network read as one delta (SIZE
keeps per-token deltas: its chunks stay within ``max_chars``)."""


def validate(request: GenerationRequest, limits: LimitsConfig) -> int:
    """Checks a request against the contract and the limits.

    Returns:
        The effective ``max_tokens``.

    Raises:
        InvalidArgument: Naming the first field at fault.
    """
    _check_input(request, limits)
    _check_labels(request.labels, limits)
    _check_sampling(request.sampling)
    if request.stream_id and not STREAM_ID_PATTERN.fullmatch(request.stream_id):
        raise InvalidArgument(
            "start.stream_id", "must be 1 to 128 characters of letters, digits and . _ : -"
        )
    if len(request.stop) > limits.max_stop_sequences:
        raise InvalidArgument("start.stop", f"at most {limits.max_stop_sequences} sequences")
    if any(not stop for stop in request.stop):
        raise InvalidArgument("start.stop", "stop sequences must not be empty")
    if any(len(stop) > limits.max_stop_sequence_chars for stop in request.stop):
        raise InvalidArgument(
            "start.stop",
            f"each stop sequence is at most {limits.max_stop_sequence_chars} characters",
        )
    if request.json_schema and not request.json_output:
        raise InvalidArgument(
            "start.response_format.json_schema", "is only allowed with OUTPUT_FORMAT_JSON"
        )
    if request.json_schema:
        check_schema(request.json_schema, limits.max_schema_bytes)
    _check_coalescing(request.options.coalescing)
    return _max_tokens(request.sampling, limits)


def _check_coalescing(policy: Coalescing) -> None:
    """Each mode's parameter in range, and no parameter for a mode that does not use it."""
    name = "start.stream_options.coalescing"
    if policy.mode is CoalesceMode.SIZE and not 0 < policy.max_chars <= MAX_CHARS:
        raise InvalidArgument(f"{name}.max_chars", f"SIZE needs 1 to {MAX_CHARS} characters")
    if policy.mode is not CoalesceMode.SIZE and policy.max_chars:
        raise InvalidArgument(f"{name}.max_chars", f"is only used by SIZE, not {policy.mode.name}")
    interval = policy.interval
    if policy.mode is CoalesceMode.TIME and not (interval and 0 < interval <= MAX_INTERVAL):
        raise InvalidArgument(
            f"{name}.interval", f"TIME needs an interval above 0 and at most {MAX_INTERVAL:g} s"
        )
    if policy.mode is not CoalesceMode.TIME and interval is not None:
        raise InvalidArgument(f"{name}.interval", f"is only used by TIME, not {policy.mode.name}")


def _check_input(request: GenerationRequest, limits: LimitsConfig) -> None:
    if request.prompt and request.messages:
        raise InvalidArgument("start.prompt", "set either prompt or messages, not both")
    if not request.prompt and not request.messages:
        raise InvalidArgument("start.prompt", "prompt or messages is required")
    if len(request.messages) > limits.max_messages:
        raise InvalidArgument(
            "start.messages",
            f"{len(request.messages)} messages; the limit is {limits.max_messages}",
        )
    size = len(request.prompt.encode())
    for index, message in enumerate(request.messages):
        if message.role is None:
            raise InvalidArgument(
                f"start.messages[{index}].role",
                "must be CHAT_ROLE_SYSTEM, CHAT_ROLE_USER or CHAT_ROLE_ASSISTANT",
            )
        if not message.content:
            raise InvalidArgument(f"start.messages[{index}].content", "must not be empty")
        size += len(message.content.encode())
    if size > limits.max_input_bytes:
        name = "start.messages" if request.messages else "start.prompt"
        raise InvalidArgument(name, f"input is {size} bytes; the limit is {limits.max_input_bytes}")


def _check_labels(labels: tuple[tuple[str, str], ...], limits: LimitsConfig) -> None:
    """At most ``max_labels`` labels, each key non-empty, keys and values within their sizes."""
    name = "start.labels"
    if len(labels) > limits.max_labels:
        raise InvalidArgument(name, f"{len(labels)} labels; the limit is {limits.max_labels}")
    for key, value in labels:
        if not key:
            raise InvalidArgument(name, "a label key must not be empty")
        size = len(key.encode())
        if size > limits.max_label_key_bytes:
            raise InvalidArgument(
                name,
                f"key {_shown(key)} is {size} bytes; the limit is {limits.max_label_key_bytes}",
            )
        size = len(value.encode())
        if size > limits.max_label_value_bytes:
            raise InvalidArgument(
                name,
                f"the value of key {_shown(key)} is {size} bytes; the limit is "
                f"{limits.max_label_value_bytes}",
            )


def _shown(key: str) -> str:
    """A label key as a message repeats it: quoted, and cut short when long."""
    if len(key) <= SHOWN_KEY_CHARS:
        return repr(key)
    return repr(key[:SHOWN_KEY_CHARS]) + "..."


def _check_sampling(sampling: Sampling) -> None:
    checks: tuple[tuple[str, float | None, float, float], ...] = (
        ("temperature", sampling.temperature, 0.0, 2.0),
        ("top_p", sampling.top_p, 0.0, 1.0),
        ("presence_penalty", sampling.presence_penalty, -2.0, 2.0),
        ("frequency_penalty", sampling.frequency_penalty, -2.0, 2.0),
    )
    for name, value, low, high in checks:
        if value is not None and not low <= value <= high:
            raise InvalidArgument(f"start.sampling.{name}", f"must be in [{low}, {high}]")
    if sampling.top_p is not None and sampling.top_p == 0:
        raise InvalidArgument("start.sampling.top_p", "must be greater than 0")
    if sampling.top_k is not None and sampling.top_k < 0:
        raise InvalidArgument("start.sampling.top_k", "must not be negative")


def _max_tokens(sampling: Sampling, limits: LimitsConfig) -> int:
    if sampling.max_tokens is None:
        return limits.default_max_tokens
    if sampling.max_tokens <= 0:
        raise InvalidArgument("start.sampling.max_tokens", "must be positive")
    if sampling.max_tokens > limits.max_tokens_cap:
        raise InvalidArgument(
            "start.sampling.max_tokens",
            f"{sampling.max_tokens} exceeds the server's cap of {limits.max_tokens_cap}",
        )
    return sampling.max_tokens
