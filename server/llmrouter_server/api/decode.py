"""Translates request messages into domain requests.

Enum values this server does not know are refused with INVALID_ARGUMENT
naming the field; the domain validates the rest (``streams/request.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import operations_pb2 as ops_pb

from llmrouter_server.api.encode import POLICIES_BY_VALUE, STATES_BY_VALUE
from llmrouter_server.errors import InvalidArgument
from llmrouter_server.routing.route import Overrides
from llmrouter_server.shaping.coalesce import CoalesceMode, Coalescing
from llmrouter_server.streams.generation import StreamState
from llmrouter_server.streams.log import SlowPolicy
from llmrouter_server.streams.request import Flow, GenerationRequest, StreamOptions
from llmrouter_server.values import Message, MidStreamAction, Role, Sampling

_POLICIES = {
    ops_pb.SLOW_SUBSCRIBER_POLICY_BLOCK: SlowPolicy.BLOCK,
    ops_pb.SLOW_SUBSCRIBER_POLICY_SKIP: SlowPolicy.SKIP,
    ops_pb.SLOW_SUBSCRIBER_POLICY_DISCONNECT: SlowPolicy.DISCONNECT,
}

_ACTIONS = {
    gen_pb.MID_STREAM_ACTION_CONTINUE: MidStreamAction.CONTINUE,
    gen_pb.MID_STREAM_ACTION_RESTART: MidStreamAction.RESTART,
    gen_pb.MID_STREAM_ACTION_FAIL: MidStreamAction.FAIL,
}

_MODES = {
    gen_pb.COALESCE_MODE_UNSPECIFIED: CoalesceMode.TOKEN,
    gen_pb.COALESCE_MODE_TOKEN: CoalesceMode.TOKEN,
    gen_pb.COALESCE_MODE_SIZE: CoalesceMode.SIZE,
    gen_pb.COALESCE_MODE_TIME: CoalesceMode.TIME,
    gen_pb.COALESCE_MODE_ADAPTIVE: CoalesceMode.ADAPTIVE,
}

_ROLES = {
    gen_pb.CHAT_ROLE_SYSTEM: Role.SYSTEM,
    gen_pb.CHAT_ROLE_USER: Role.USER,
    gen_pb.CHAT_ROLE_ASSISTANT: Role.ASSISTANT,
}


def start_request(
    start: gen_pb.StartGeneration, deadline: float | None = None
) -> GenerationRequest:
    """The domain request of a ``start`` message.

    Args:
        start: The message.
        deadline: The call's deadline on the ``time.monotonic`` clock, if any.
    """
    options = start.stream_options
    return GenerationRequest(
        prompt=start.prompt,
        messages=tuple(Message(_ROLES.get(m.role), m.content) for m in start.messages),
        stream_id=start.stream_id,
        model=start.model,
        sampling=_sampling(start.sampling),
        stop=tuple(start.stop),
        json_output=start.response_format.format == gen_pb.OUTPUT_FORMAT_JSON,
        json_schema=start.response_format.json_schema,
        options=StreamOptions(
            include_progress=options.include_progress,
            include_metadata=options.include_metadata,
            include_token_ids=options.include_token_ids,
            coalescing=coalescing(options.coalescing),
        ),
        labels=tuple(sorted(start.labels.items())),
        flow=flow(start.flow),
        detach=start.on_disconnect.action == gen_pb.DISCONNECT_ACTION_DETACH,
        detach_seconds=_seconds(start.on_disconnect, "detach_ttl"),
        routing=overrides(start.routing),
        deadline=deadline,
    )


def overrides(routing: gen_pb.RoutingOverrides) -> Overrides:
    """The domain overrides of a ``RoutingOverrides`` message (unset fields keep the route's)."""
    policy = routing.policy
    if policy and policy not in POLICIES_BY_VALUE:
        raise InvalidArgument("start.routing.policy", f"unknown policy value {policy}")
    action = routing.on_mid_stream_failure
    if action and action not in _ACTIONS:
        raise InvalidArgument("start.routing.on_mid_stream_failure", f"unknown value {action}")
    return Overrides(
        policy=POLICIES_BY_VALUE.get(policy),
        first_token_timeout=_seconds(routing, "first_token_timeout"),
        idle_timeout=_seconds(routing, "idle_timeout"),
        max_attempts=routing.max_attempts or None,
        on_mid_stream_failure=_ACTIONS.get(action),
        race_after=_seconds(routing, "race_after"),
    )


def coalescing(message: gen_pb.Coalescing) -> Coalescing:
    """The domain policy of a ``Coalescing`` message (ranges are checked by ``validate``)."""
    mode = _MODES.get(message.mode)
    if mode is None:
        raise InvalidArgument(
            "start.stream_options.coalescing.mode", f"unknown mode value {message.mode}"
        )
    interval = message.interval.ToNanoseconds() / 1e9 if message.HasField("interval") else None
    return Coalescing(mode=mode, max_chars=message.max_chars, interval=interval)


def flow(message: gen_pb.FlowControl) -> Flow:
    """The domain flow settings of a ``FlowControl`` message."""
    return Flow(
        credit=message.mode == gen_pb.FLOW_MODE_CREDIT, initial_credits=message.initial_credits
    )


def states(values: Iterable[ops_pb.StreamState]) -> list[StreamState]:
    """The domain states of a request's state filter (unset values ignored)."""
    return [STATES_BY_VALUE[value] for value in values if value]


def slow_policy(value: ops_pb.SlowSubscriberPolicy) -> SlowPolicy:
    """The domain policy of a ``SlowSubscriberPolicy`` value (BLOCK when unset)."""
    return _POLICIES.get(value, SlowPolicy.BLOCK)


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
