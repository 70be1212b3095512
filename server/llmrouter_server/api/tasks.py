"""The tasks a streaming call runs beside its response loop, and what a bug in one does.

A Generate call reads steering requests, a Control call reads commands and
pushes watched changes, a Subscribe call reads requests and pumps each
subscription, each in a task of its own. Everything a client can send is
answered inside those tasks (an in-band error, a rejection). An exception
that still escapes one is a bug in the server: ``guarded`` logs it with its
traceback and ends the call with INTERNAL, so the call neither hangs nor
stops answering without a word.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from llmrouter_server.errors import Internal, RouterError

logger = logging.getLogger(__name__)


def guarded(
    work: Coroutine[Any, Any, None],
    what: str,
    fail: Callable[[RouterError], Awaitable[None]],
) -> asyncio.Task[None]:
    """Runs ``work`` in a task; an exception escaping it ends the call with INTERNAL.

    Args:
        work: The task's coroutine.
        what: Names the task in the log and in the status message, e.g.
            ``Control command reader``.
        fail: Ends the call with the error it is given.
    """

    async def run() -> None:
        try:
            await work
        except Exception:
            logger.exception("%s failed", what)
            await fail(Internal(f"internal error in the {what}; the server logged it"))

    return asyncio.create_task(run(), name=what)
