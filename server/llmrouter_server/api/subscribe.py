"""The Subscribe RPC: follow generations by id, replay then live, many per call.

Each subscription has a cursor and a pump task copying its events onto the
call's one bounded outgoing queue. A subscription that fails (unknown
stream, offset out of range, too many subscriptions, fell behind under
DISCONNECT) ends alone with an ``ended`` item carrying its status; the call
and the other subscriptions go on. A request that fails before it names a
subscription (undecodable, no action) gets an ``ended`` item with its error
and an empty stream id. The call ends once the client has half-closed and
every subscription has ended; a bug in one of its tasks ends it with
INTERNAL (``tasks``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.api import decode, encode
from llmrouter_server.api.decoding import Undecodable
from llmrouter_server.api.tasks import guarded
from llmrouter_server.auth.principal import Principal
from llmrouter_server.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    RouterError,
)
from llmrouter_server.streams.log import Cursor
from llmrouter_server.streams.service import Generations

Item = svc_pb.SubscribeResponse
Requests = AsyncIterator[svc_pb.SubscribeRequest | Undecodable]
"""A Subscribe call's request stream, as the decoding interceptor hands it over."""


@dataclass(eq=False)
class _Subscription:
    cursor: Cursor
    pump: asyncio.Task[None] | None = None


class _Call:
    """The subscriptions of one Subscribe call."""

    def __init__(self, generations: Generations, principal: Principal) -> None:
        self.generations = generations
        self.principal = principal
        self.out: asyncio.Queue[Item | RouterError | None] = asyncio.Queue(maxsize=32)
        """What the call writes, in order; an error ends it, None ends it well."""
        self.subscriptions: dict[str, _Subscription] = {}
        self.reading = True

    async def read(self, requests: Requests) -> None:
        async for request in requests:
            if isinstance(request, Undecodable):
                await self.out.put(_ended("", None, request.error()))
            else:
                await self.apply(request)
        self.reading = False
        await self.maybe_end()

    async def apply(self, request: svc_pb.SubscribeRequest) -> None:
        action = request.WhichOneof("action")
        stream_id = getattr(request, action).stream_id if action else ""
        try:
            if action == "add":
                await self.add(request.add)
            elif action == "remove":
                await self.end(self.get(stream_id), stream_id)
            elif action == "grant":
                self.get(stream_id).cursor.grant(request.grant.credits)
            else:
                raise InvalidArgument("SubscribeRequest.action", "no action set")
        except RouterError as error:
            await self.out.put(_ended(stream_id, None, error))

    async def add(self, add: ops_pb.AddSubscription) -> None:
        if add.stream_id in self.subscriptions:
            raise FailedPrecondition(f"already subscribed to stream {add.stream_id!r}")
        limit = self.generations.limits.max_subscriptions_per_call
        if len(self.subscriptions) >= limit:
            raise ResourceExhausted(f"at most {limit} subscriptions per Subscribe call")
        generation, cursor = self.generations.subscribe(
            self.principal,
            add.stream_id,
            add.from_offset,
            decode.slow_policy(add.slow_policy, "AddSubscription.slow_policy"),
            decode.flow(add.flow, "AddSubscription.flow"),
        )
        subscription = _Subscription(cursor)
        self.subscriptions[add.stream_id] = subscription
        added = ops_pb.SubscriptionAdded(
            stream_id=add.stream_id,
            from_offset=add.from_offset,
            state=encode.stream_status_state(generation.state),
        )
        await self.out.put(Item(added=added))
        subscription.pump = guarded(
            self.pump(add.stream_id, subscription), "Subscribe pump", self.out.put
        )

    def get(self, stream_id: str) -> _Subscription:
        try:
            return self.subscriptions[stream_id]
        except KeyError:
            raise NotFound(f"not subscribed to stream {stream_id!r}") from None

    async def pump(self, stream_id: str, subscription: _Subscription) -> None:
        error: RouterError | None = None
        try:
            while (event := await subscription.cursor.next()) is not None:
                await self.out.put(Item(event=encode.stream_event(event)))
        except RouterError as failure:
            error = failure
        subscription.pump = None
        await self.end(subscription, stream_id, error)

    async def end(
        self, subscription: _Subscription, stream_id: str, error: RouterError | None = None
    ) -> None:
        if subscription.pump is not None:
            subscription.pump.cancel()
        subscription.cursor.close()
        self.subscriptions.pop(stream_id, None)
        await self.out.put(_ended(stream_id, subscription.cursor.offset, error))
        await self.maybe_end()

    async def maybe_end(self) -> None:
        if not self.reading and not self.subscriptions:
            await self.out.put(None)

    def close(self) -> None:
        for subscription in self.subscriptions.values():
            if subscription.pump is not None:
                subscription.pump.cancel()
            subscription.cursor.close()


async def subscribe(
    generations: Generations,
    principal: Principal,
    requests: Requests,
) -> AsyncGenerator[Item, None]:
    """Serves one Subscribe call.

    Raises:
        Internal: A bug in one of the call's tasks (logged with its traceback).
    """
    call = _Call(generations, principal)
    reader = guarded(call.read(requests), "Subscribe request reader", call.out.put)
    try:
        while (item := await call.out.get()) is not None:
            if isinstance(item, RouterError):
                raise item
            yield item
    finally:
        reader.cancel()
        call.close()


def _ended(stream_id: str, next_offset: int | None, error: RouterError | None) -> Item:
    ended = ops_pb.SubscriptionEnded(stream_id=stream_id, next_offset=next_offset or 0)
    if error is not None:
        ended.error.CopyFrom(encode.command_error(error))
    return Item(ended=ended)
