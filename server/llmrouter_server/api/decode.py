"""Translates request messages into domain requests.

Every enum goes through a table of the values this server knows. Proto3
enums are open: a value the client's contract has and ours does not (or any
number at all) survives parsing, so an unknown value is refused here with
INVALID_ARGUMENT naming the field; an unset (zero) value means the field's
default. The domain validates the rest (``streams/request.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import operations_pb2 as ops_pb

from llmrouter_server.api.encode import POLICIES_BY_VALUE, STATES_BY_VALUE
from llmrouter_server.errors import InvalidArgument
from llmrouter_server.routing.route import Overrides
from llmrouter_server.shaping.coalesce import CoalesceMode, Coalescing
from llmrouter_server.streams.lifecycle import StreamState
from llmrouter_server.streams.log import SlowPolicy
from llmrouter_server.streams.request import Flow, GenerationRequest, StreamOptions
from llmrouter_server.values import Message, MidStreamAction, Role, Sampling

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Enum(Generic[_T]):
    """The domain value of each value of one contract enum that this server knows."""

    values: Mapping[int, _T]
    """Contract values to domain values; a zero key gives the unset field's meaning."""
    name: Callable[[int], str]
    """The contract's name of a value (the enum wrapper's ``Name``)."""

    def __call__(self, value: int, field: str) -> _T:
        """The domain value of ``value``.

        Raises:
            InvalidArgument: ``value`` is not one this server knows; names ``field``.
        """
        try:
            return self.values[value]
        except KeyError:
            known = ", ".join(self.name(known) for known in self.values if known)
            raise InvalidArgument(field, f"unknown value {value} (expected {known})") from None


_ROLES: _Enum[Role | None] = _Enum(
    {
        gen_pb.CHAT_ROLE_UNSPECIFIED: None,  # refused by validation, which says what to set
        gen_pb.CHAT_ROLE_SYSTEM: Role.SYSTEM,
        gen_pb.CHAT_ROLE_USER: Role.USER,
        gen_pb.CHAT_ROLE_ASSISTANT: Role.ASSISTANT,
    },
    gen_pb.ChatRole.Name,
)

_JSON_OUTPUT = _Enum(
    {
        gen_pb.OUTPUT_FORMAT_UNSPECIFIED: False,
        gen_pb.OUTPUT_FORMAT_TEXT: False,
        gen_pb.OUTPUT_FORMAT_JSON: True,
    },
    gen_pb.OutputFormat.Name,
)

_DETACH = _Enum(
    {
        gen_pb.DISCONNECT_ACTION_UNSPECIFIED: False,
        gen_pb.DISCONNECT_ACTION_CANCEL: False,
        gen_pb.DISCONNECT_ACTION_DETACH: True,
    },
    gen_pb.DisconnectAction.Name,
)

_CREDIT_FLOW = _Enum(
    {
        gen_pb.FLOW_MODE_UNSPECIFIED: False,
        gen_pb.FLOW_MODE_AUTO: False,
        gen_pb.FLOW_MODE_CREDIT: True,
    },
    gen_pb.FlowMode.Name,
)

_MODES = _Enum(
    {
        gen_pb.COALESCE_MODE_UNSPECIFIED: CoalesceMode.TOKEN,
        gen_pb.COALESCE_MODE_TOKEN: CoalesceMode.TOKEN,
        gen_pb.COALESCE_MODE_SIZE: CoalesceMode.SIZE,
        gen_pb.COALESCE_MODE_TIME: CoalesceMode.TIME,
        gen_pb.COALESCE_MODE_ADAPTIVE: CoalesceMode.ADAPTIVE,
    },
    gen_pb.CoalesceMode.Name,
)


def _unset_is_none(values: Iterable[tuple[int, _T]]) -> dict[int, _T | None]:
    """A table of ``values`` whose unset (zero) value means None."""
    table: dict[int, _T | None] = {0: None}
    table.update(values)
    return table


_POLICIES = _Enum(_unset_is_none(POLICIES_BY_VALUE.items()), gen_pb.RoutePolicy.Name)
"""None (unset) keeps the route's policy."""

_ACTIONS: _Enum[MidStreamAction | None] = _Enum(
    {
        gen_pb.MID_STREAM_ACTION_UNSPECIFIED: None,  # keeps the route's
        gen_pb.MID_STREAM_ACTION_CONTINUE: MidStreamAction.CONTINUE,
        gen_pb.MID_STREAM_ACTION_RESTART: MidStreamAction.RESTART,
        gen_pb.MID_STREAM_ACTION_FAIL: MidStreamAction.FAIL,
    },
    gen_pb.MidStreamAction.Name,
)

_SLOW_POLICIES = _Enum(
    {
        ops_pb.SLOW_SUBSCRIBER_POLICY_UNSPECIFIED: SlowPolicy.BLOCK,
        ops_pb.SLOW_SUBSCRIBER_POLICY_BLOCK: SlowPolicy.BLOCK,
        ops_pb.SLOW_SUBSCRIBER_POLICY_SKIP: SlowPolicy.SKIP,
        ops_pb.SLOW_SUBSCRIBER_POLICY_DISCONNECT: SlowPolicy.DISCONNECT,
    },
    ops_pb.SlowSubscriberPolicy.Name,
)

_STATES = _Enum(_unset_is_none(STATES_BY_VALUE.items()), ops_pb.StreamState.Name)
"""None (unset) is ignored in a state filter."""


def start_request(
    start: gen_pb.StartGeneration,
    deadline: float | None = None,
    trace_context: tuple[tuple[str, str], ...] = (),
) -> GenerationRequest:
    """The domain request of a ``start`` message.

    Args:
        start: The message.
        deadline: The call's deadline on the ``time.monotonic`` clock, if any.
        trace_context: The call's W3C trace context metadata (``trace_metadata``).

    Raises:
        InvalidArgument: An enum field has a value this server does not know.
    """
    options = start.stream_options
    return GenerationRequest(
        prompt=start.prompt,
        messages=tuple(_message(m, f"start.messages[{i}]") for i, m in enumerate(start.messages)),
        stream_id=start.stream_id,
        model=start.model,
        sampling=_sampling(start.sampling),
        stop=tuple(start.stop),
        json_output=_JSON_OUTPUT(start.response_format.format, "start.response_format.format"),
        json_schema=start.response_format.json_schema,
        options=StreamOptions(
            include_progress=options.include_progress,
            include_metadata=options.include_metadata,
            include_token_ids=options.include_token_ids,
            coalescing=coalescing(options.coalescing),
        ),
        labels=tuple(sorted(start.labels.items())),
        flow=flow(start.flow, "start.flow"),
        detach=_DETACH(start.on_disconnect.action, "start.on_disconnect.action"),
        detach_seconds=_seconds(start.on_disconnect, "detach_ttl"),
        routing=overrides(start.routing),
        deadline=deadline,
        trace_context=trace_context,
    )


TRACE_KEYS = frozenset({"traceparent", "tracestate"})
"""The W3C trace context metadata keys (gRPC metadata keys are lower case)."""

MAX_TRACE_VALUE = 512
"""Longest trace context value taken (W3C: a ``tracestate`` of more than 512
characters may be dropped); a longer one is ignored."""


def trace_metadata(
    metadata: Iterable[tuple[str, str | bytes]] | None,
) -> tuple[tuple[str, str], ...]:
    """The W3C trace context pairs of a call's metadata, as they came.

    Only ``traceparent`` and ``tracestate`` are taken, and only text values up
    to ``MAX_TRACE_VALUE`` characters; whether they are valid is the trace
    observer's to judge (an invalid ``traceparent`` starts a new trace).
    """
    return tuple(
        (key, value)
        for key, value in metadata or ()
        if key in TRACE_KEYS and isinstance(value, str) and len(value) <= MAX_TRACE_VALUE
    )


def overrides(routing: gen_pb.RoutingOverrides) -> Overrides:
    """The domain overrides of a ``RoutingOverrides`` message (unset fields keep the route's)."""
    return Overrides(
        policy=_POLICIES(routing.policy, "start.routing.policy"),
        first_token_timeout=_seconds(routing, "first_token_timeout"),
        idle_timeout=_seconds(routing, "idle_timeout"),
        max_attempts=routing.max_attempts or None,
        on_mid_stream_failure=_ACTIONS(
            routing.on_mid_stream_failure, "start.routing.on_mid_stream_failure"
        ),
        race_after=_seconds(routing, "race_after"),
    )


def coalescing(message: gen_pb.Coalescing) -> Coalescing:
    """The domain policy of a ``Coalescing`` message (ranges are checked by ``validate``)."""
    mode = _MODES(message.mode, "start.stream_options.coalescing.mode")
    interval = message.interval.ToNanoseconds() / 1e9 if message.HasField("interval") else None
    return Coalescing(mode=mode, max_chars=message.max_chars, interval=interval)


def flow(message: gen_pb.FlowControl, field: str) -> Flow:
    """The domain flow settings of a ``FlowControl`` message (AUTO when unset).

    Args:
        message: The message.
        field: Its path in the request, e.g. ``start.flow``.
    """
    return Flow(
        credit=_CREDIT_FLOW(message.mode, f"{field}.mode"),
        initial_credits=message.initial_credits,
    )


def states(values: Iterable[ops_pb.StreamState], field: str) -> list[StreamState]:
    """The domain states of a request's state filter (unset values ignored).

    Args:
        values: The filter's values.
        field: Its path, e.g. ``ListStreamsRequest.states``.
    """
    decoded = (_STATES(value, field) for value in values)
    return [state for state in decoded if state is not None]


def slow_policy(value: ops_pb.SlowSubscriberPolicy, field: str) -> SlowPolicy:
    """The domain policy of a ``SlowSubscriberPolicy`` value (BLOCK when unset)."""
    return _SLOW_POLICIES(value, field)


def _message(message: gen_pb.ChatMessage, field: str) -> Message:
    return Message(_ROLES(message.role, f"{field}.role"), message.content)


def _seconds(message: gen_pb.DisconnectPolicy | gen_pb.RoutingOverrides, name: str) -> float | None:
    if not message.HasField(name):
        return None
    return float(getattr(message, name).ToNanoseconds()) / 1e9


def _sampling(sampling: gen_pb.SamplingParams) -> Sampling:
    def optional(name: str) -> float | None:
        return float(getattr(sampling, name)) if sampling.HasField(name) else None

    return Sampling(
        max_tokens=sampling.max_tokens if sampling.HasField("max_tokens") else None,
        temperature=optional("temperature"),
        top_p=optional("top_p"),
        top_k=sampling.top_k if sampling.HasField("top_k") else None,
        seed=sampling.seed if sampling.HasField("seed") else None,
        presence_penalty=optional("presence_penalty"),
        frequency_penalty=optional("frequency_penalty"),
    )
