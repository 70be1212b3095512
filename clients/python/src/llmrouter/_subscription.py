"""Subscription: follows generations by stream id on one Subscribe call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from ._errors import RouterError
from ._reconnect import Cursor, Reconnect, wait_to_reconnect
from ._requests import Requests

_Call = grpc.aio.StreamStreamCall[svc_pb.SubscribeRequest, svc_pb.SubscribeResponse]


class Subscription:
    """Follows generations: replay from an offset, then live events.

    Iterate it once for its items (``event``, ``added``, ``ended``); the call
    starts when the iteration does and fails with :class:`RouterError`. ``add``,
    ``remove`` and ``grant`` may be called at any time.
    """

    def __init__(
        self, stub: svc_grpc.RouterServiceAsyncStub, reconnect: Reconnect | None = None
    ) -> None:
        self._stub = stub
        self._reconnect = reconnect
        self._requests: Requests[svc_pb.SubscribeRequest] = Requests()
        self._active: dict[str, ops_pb.AddSubscription] = {}
        self._cursors: dict[str, Cursor] = {}
        self._items: AsyncIterator[svc_pb.SubscribeResponse] | None = None
        self._call: _Call | None = None
        self._attempts = 0

    def add(self, stream_id: str, from_offset: int = 0, **fields: Any) -> None:
        """Follows a generation from ``from_offset`` (0 replays it from the start).

        ``fields`` are the other ``AddSubscription`` fields (``flow``, ``slow_policy``).
        """
        add = ops_pb.AddSubscription(stream_id=stream_id, from_offset=from_offset, **fields)
        self._active[stream_id] = add
        self._requests.put(svc_pb.SubscribeRequest(add=add))

    def remove(self, stream_id: str) -> None:
        """Stops following a generation."""
        self._active.pop(stream_id, None)
        remove = ops_pb.RemoveSubscription(stream_id=stream_id)
        self._requests.put(svc_pb.SubscribeRequest(remove=remove))

    def grant(self, stream_id: str, credits: int) -> None:
        """Allows ``credits`` more events on one subscription (CREDIT flow mode)."""
        grant = ops_pb.SubscriptionCredits(stream_id=stream_id, credits=credits)
        self._requests.put(svc_pb.SubscribeRequest(grant=grant))

    async def aclose(self) -> None:
        """Ends the call and every subscription on it."""
        self._requests.close()
        if self._call is not None:
            self._call.cancel()

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
        for stream_id, add in self._active.items():
            again = ops_pb.AddSubscription()
            again.CopyFrom(add)
            if stream_id in self._cursors:
                again.from_offset = self._cursors[stream_id].next
            self._requests.put(svc_pb.SubscribeRequest(add=again))

    def _accept(self, item: svc_pb.SubscribeResponse) -> bool:
        """Drops events replayed after reconnecting; forgets ended subscriptions."""
        if item.HasField("ended"):
            self._active.pop(item.ended.stream_id, None)
            self._cursors.pop(item.ended.stream_id, None)
        if not item.HasField("event"):
            return True
        cursor = self._cursors.setdefault(item.event.stream_id, Cursor())
        return cursor.accept(item.event)
