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
    dropped connection, a restarted proxy or a server going away. A
    :class:`Generation` re-attaches with a Generate ``attach`` request naming its
    stream id and the offset after the last event it delivered; a
    :class:`Subscription` adds each of its subscriptions again from that offset.
    Replayed events the caller has already seen are dropped, so it sees every
    event once and in order.

    This needs a server that implements DETACH and ``attach``: with a policy
    set, every generation starts with ``on_disconnect`` DETACH (unless the
    request sets its own), so it outlives the lost call for ``detach_ttl``. A
    server without DETACH refuses such a start with ``UNIMPLEMENTED``.
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


async def wait_to_reconnect(policy: Reconnect | None, error: RouterError, attempt: int) -> bool:
    """Sleeps before attempt number ``attempt`` (from 1) when ``error`` allows it.

    Returns:
        False when the caller must give up instead.
    """
    if policy is None or attempt > policy.max_attempts:
        return False
    if error.code != grpc.StatusCode.UNAVAILABLE:
        return False
    await asyncio.sleep(min(policy.backoff * 2 ** (attempt - 1), policy.max_backoff))
    return True


class Cursor:
    """The next offset of one generation, so replayed events are delivered once."""

    def __init__(self) -> None:
        self.next = 0
        self._seen = False

    def accept(self, event: ev_pb.StreamEvent) -> bool:
        """True when ``event`` is new; the cursor then moves past it."""
        if self._seen and event.offset < self.next:
            return False
        self.next, self._seen = event.offset + 1, True
        return True
