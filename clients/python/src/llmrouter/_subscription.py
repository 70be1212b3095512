"""Subscription: follows generations by stream id on one Subscribe call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc

from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from ._errors import RouterError
from ._reconnect import Credits, Cursor, Reconnect, wait_to_reconnect
from ._requests import Requests

_Call = grpc.aio.StreamStreamCall[svc_pb.SubscribeRequest, svc_pb.SubscribeResponse]


@dataclass
class _Following:
    """One subscription as it would be added again after a reconnect."""

    add: ops_pb.AddSubscription
    credits: Credits
    readded: bool = False
    """Added again on a new call: its next ``added`` item is not delivered."""


class Subscription:
    """Follows generations: replay from an offset, then live events.

    Iterate it once for its items; the call starts when the iteration does and
    fails with :class:`RouterError`. Each subscription delivers an ``added``
    item, its events in offset order and an ``ended`` item
    (:meth:`RouterError.from_ended` says why it ended). A subscription that
    fails, for example on an unknown stream id, ends alone; the call and the
    others go on. A subscription whose generation is cancelled (by its caller,
    an operator, a detach TTL or a server shutdown) gets the generation's last
    event, ``completed`` with finish reason CANCELLED, at once, even in CREDIT
    flow with no credits left (its offsets jump), and then ends normally.

    ``add``, ``remove``, ``grant`` and ``close_send`` are coroutines, like
    :class:`Control`'s methods and a :class:`Generation`'s steering: each
    queues its request on the call and returns; they may be awaited at any
    time. After ``close_send`` the iteration ends once every subscription has
    ended. Leaving an ``async with`` block ends the call.
    """

    def __init__(
        self, stub: svc_grpc.RouterServiceAsyncStub, reconnect: Reconnect | None = None
    ) -> None:
        self._stub = stub
        self._reconnect = reconnect
        self._requests: Requests[svc_pb.SubscribeRequest] = Requests()
        self._active: dict[str, _Following] = {}
        self._cursors: dict[str, Cursor] = {}
        self._items: AsyncIterator[svc_pb.SubscribeResponse] | None = None
        self._call: _Call | None = None
        self._attempts = 0
        self._send_closed = False

    async def add(self, stream_id: str, from_offset: int = 0, **fields: Any) -> None:
        """Follows a generation from ``from_offset`` (0 replays it from the start).

        ``fields`` are the other ``AddSubscription`` fields (``flow``, ``slow_policy``).
        """
        add = ops_pb.AddSubscription(stream_id=stream_id, from_offset=from_offset, **fields)
        self._active[stream_id] = _Following(add, Credits(add.flow))
        self._requests.put(svc_pb.SubscribeRequest(add=add))

    async def remove(self, stream_id: str) -> None:
        """Stops following a generation; its ``ended`` item follows."""
        self._active.pop(stream_id, None)
        remove = ops_pb.RemoveSubscription(stream_id=stream_id)
        self._requests.put(svc_pb.SubscribeRequest(remove=remove))

    async def grant(self, stream_id: str, credits: int) -> None:
        """Allows ``credits`` more events on one subscription (CREDIT flow mode)."""
        grant = ops_pb.SubscriptionCredits(stream_id=stream_id, credits=credits)
        following = self._active.get(stream_id)
        if self._requests.put(svc_pb.SubscribeRequest(grant=grant)) and following is not None:
            following.credits.grant(credits)

    async def close_send(self) -> None:
        """Says no more requests follow: the call ends once every subscription has ended."""
        self._send_closed = True
        self._requests.close()

    async def aclose(self) -> None:
        """Ends the call and every subscription on it."""
        self._requests.close()
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[svc_pb.SubscribeResponse]:
        if self._items is None:
            self._items = self._run()
        return self._items

    async def _run(self) -> AsyncIterator[svc_pb.SubscribeResponse]:
        try:
            while True:
                try:
                    async for item in self._call_once():
                        yield item
                except grpc.aio.AioRpcError as error:
                    failure = RouterError.from_rpc_error(error)
                    self._attempts += 1
                    if not await wait_to_reconnect(self._reconnect, failure, self._attempts):
                        raise failure from error
                    self._resubscribe()
                else:
                    return
        finally:
            await self.aclose()

    async def _call_once(self) -> AsyncIterator[svc_pb.SubscribeResponse]:
        call = self._call = self._stub.Subscribe(self._requests.messages())
        async for item in call:
            if self._accept(item):
                self._attempts = 0
                yield item

    def _resubscribe(self) -> None:
        """A new request side adding every active subscription from its next offset."""
        self._requests.close()
        self._requests = Requests()
        for stream_id, following in self._active.items():
            again = ops_pb.AddSubscription()
            again.CopyFrom(following.add)
            if stream_id in self._cursors:
                again.from_offset = self._cursors[stream_id].next
            flow = following.credits.flow()
            if flow is not None:
                again.flow.CopyFrom(flow)
            following.readded = True
            self._requests.put(svc_pb.SubscribeRequest(add=again))
        if self._send_closed:
            self._requests.close()

    def _accept(self, item: svc_pb.SubscribeResponse) -> bool:
        """Drops what a reconnect repeats; counts credits; forgets ended subscriptions."""
        kind = item.WhichOneof("item")
        if kind == "added":
            following = self._active.get(item.added.stream_id)
            repeated = following is not None and following.readded
            if following is not None:
                following.readded = False
            return not repeated
        if kind == "ended":
            self._active.pop(item.ended.stream_id, None)
            self._cursors.pop(item.ended.stream_id, None)
            return True
        if kind != "event":
            return True
        cursor = self._cursors.setdefault(item.event.stream_id, Cursor())
        if not cursor.accept(item.event):
            return False
        following = self._active.get(item.event.stream_id)
        if following is not None:
            following.credits.spend()
        return True
