"""Why a generation's producer was stopped from outside, and how its log ends then.

A ``Cancel`` (by the caller, an operator, the detach TTL) ends the generation:
its log ends with one ``Completed`` event (CANCELLED, who and why). An
``Interrupt`` (the server shuts down) stops only this server's part of it:
readers get UNAVAILABLE with the offset to re-attach from, elsewhere, once
what was produced is in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from llmrouter_server.errors import Unavailable
from llmrouter_server.streams.accounting import Accounting
from llmrouter_server.streams.events import Completed
from llmrouter_server.values import CancelledBy

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cancel:
    """The generation is cancelled."""

    by: CancelledBy = CancelledBy.CALLER
    """Who cancels."""
    reason: str = ""
    """Why, in their words."""

    def completed(self, stream_id: str, offset: int, tally: Accounting) -> Completed:
        """The ``Completed`` event the log ends with, at ``offset``."""
        logger.info(
            "stream %s cancelled by %s at offset %d%s",
            stream_id, self.by, offset, f": {self.reason}" if self.reason else "",
            extra={"stream_id": stream_id, "offset": offset, "cancelled_by": str(self.by)},
        )  # fmt: skip
        return tally.completed(self.by, self.reason)


@dataclass(frozen=True, slots=True)
class Interrupt:
    """The generation's producer stops here; the generation may go on elsewhere."""

    why: str
    """What stopped it ("the server shut down")."""

    def error(self, offset: int) -> Unavailable:
        """The error readers get after the events before ``offset``."""
        return Unavailable(f"{self.why}; re-attach elsewhere from offset {offset}")


Stop = Cancel | Interrupt
"""Why a producer was stopped from outside."""
