"""Reconnecting: the policy that re-attaches after a lost call, and the offset cursor."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc

from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb

from ._errors import RouterError


@dataclass(frozen=True)
class Reconnect:
    """Re-attaches a generation or a subscription after its call was lost.

    A lost call is one that ended with ``UNAVAILABLE``: how gRPC reports a
    dropped connection, a restarted proxy or a server going away. With a policy
    set, every generation starts with ``on_disconnect`` DETACH (unless the
    request sets its own), so the server keeps it running for ``detach_ttl``
    after its call is lost. A :class:`Generation` then re-attaches with a
    Generate ``attach`` request naming its stream id, the offset after the last
    event it delivered and, in CREDIT flow, the credits it had left; a
    :class:`Subscription` adds each of its subscriptions again from its next
    offset. Events the caller has already seen are dropped and a repeated
    ``added`` item is not delivered, so it sees every event once and in order.

    The server may not have noticed yet that the lost call is gone when the
    attach arrives; it then refuses it with ``FAILED_PRECONDITION``, and that is
    retried like ``UNAVAILABLE``. Steering sent while the call is down
    (``pause``, ``resume``, ``cancel``, ``grant``) is dropped, not replayed.
    An ``UNAVAILABLE`` that carries a ``RouteFailure`` is not a lost call but
    the generation's end (every attempt its route allowed failed), so it is
    raised at once.
    """

    max_attempts: int = 3
    """Re-attach attempts in a row without an event in between."""
    backoff: float = 0.1
    """Seconds before the first attempt, doubled after each one."""
    max_backoff: float = 2.0
    """The longest wait in seconds."""
    detach_ttl: float = 30.0
    """Seconds the server keeps a generation whose caller is gone."""

    def disconnect_policy(self) -> gen_pb.DisconnectPolicy:
        """The ``on_disconnect`` a reconnecting client starts generations with."""
        policy = gen_pb.DisconnectPolicy(action=gen_pb.DISCONNECT_ACTION_DETACH)
        policy.detach_ttl.FromNanoseconds(int(self.detach_ttl * 1e9))
        return policy


async def wait_to_reconnect(
    policy: Reconnect | None, error: RouterError, attempt: int, *, attaching: bool = False
) -> bool:
    """Sleeps before attempt number ``attempt`` (from 1) when ``error`` allows it.

    Args:
        policy: The reconnect policy, if any.
        error: Why the call ended.
        attempt: The attempt about to be made, counting from 1.
        attaching: ``error`` ended a re-attach before it delivered anything.

    Returns:
        False when the caller must give up instead.
    """
    if policy is None or attempt > policy.max_attempts or error.route_failure is not None:
        return False
    busy = attaching and error.code == grpc.StatusCode.FAILED_PRECONDITION
    if error.code != grpc.StatusCode.UNAVAILABLE and not busy:
        return False
    await asyncio.sleep(min(policy.backoff * 2 ** (attempt - 1), policy.max_backoff))
    return True


class Cursor:
    """The next offset of one generation, so replayed events are delivered once."""

    def __init__(self, start: int | None = None) -> None:
        """A cursor that drops events before ``start``, when given."""
        self.next = start or 0
        self._seen = start is not None

    def accept(self, event: ev_pb.StreamEvent) -> bool:
        """True when ``event`` is new; the cursor then moves past it."""
        if self._seen and event.offset < self.next:
            return False
        self.next, self._seen = event.offset + 1, True
        return True


class Credits:
    """What a consumer in CREDIT flow may still receive.

    A re-attach or a resubscription asks for exactly the credits that were left.
    """

    def __init__(self, flow: gen_pb.FlowControl) -> None:
        self._enabled = flow.mode == gen_pb.FLOW_MODE_CREDIT
        self._left = flow.initial_credits

    def grant(self, credits: int) -> None:
        """Counts ``credits`` more."""
        self._left += credits

    def spend(self) -> None:
        """Counts one event received."""
        if self._enabled and self._left > 0:
            self._left -= 1

    def flow(self) -> gen_pb.FlowControl | None:
        """The flow a new call continues with; None in AUTO flow."""
        if not self._enabled:
            return None
        return gen_pb.FlowControl(mode=gen_pb.FLOW_MODE_CREDIT, initial_credits=self._left)
