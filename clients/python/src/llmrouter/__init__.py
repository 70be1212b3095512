"""Python client for llmrouter; the generated stubs live in ``llmrouter.v1``.

``Client`` starts generations (``Generation``, an async iterator of events
steered with the coroutines ``pause``, ``resume``, ``cancel`` and ``grant``),
conversations (``ChatSession``), subscriptions (``Subscription``) and operator
channels (``Control``). A cancelled generation ends normally with a
``completed`` event saying who cancelled it and why. Failures raise
``RouterError`` with the gRPC code and the decoded ``google.rpc`` details.
An API key (``api_key``) and ``TLS`` settings are options of ``Client`` and of
``open_channel``, which opens a channel the same way for other stubs.
"""

from ._channel import TLS, open_channel
from ._chat import ChatSession
from ._client import Client
from ._control import Control
from ._errors import RouterError
from ._generation import Generation, Result
from ._reconnect import Reconnect
from ._subscription import Subscription

__all__ = [
    "TLS",
    "ChatSession",
    "Client",
    "Control",
    "Generation",
    "Reconnect",
    "Result",
    "RouterError",
    "Subscription",
    "open_channel",
]
