"""The WebSocket gateway: the contract for browsers, beside the gRPC api layer.

A second adapter over the same domain (it never calls the gRPC port): each
frame names a call, a RouterService method and a message in the proto3 JSON
mapping; the calls run the very handlers the gRPC servicer runs (``api``), so
events, errors and flow control are the same. ``frames`` reads and writes the
frames, ``methods`` maps method names to handlers, ``socket`` multiplexes the
calls of one socket, ``access`` checks origin and credentials at the upgrade,
``server`` is the aiohttp application (with the chat page at ``/``).
"""
