"""Logging set-up for ``llmrouter serve``."""

from __future__ import annotations

import logging

GRPC_LOGGER = "grpc._cython.cygrpc"
"""Where grpcio's asyncio server logs failures of its own operations."""


class PeerGoneFilter(logging.Filter):
    """Turns grpcio's report of a write to a client that already left into DEBUG.

    grpcio logs ``ExecuteBatchError raised in core by servicer method`` at
    ERROR, with a traceback, when a streaming response is written just as the
    client's connection closes; the generation is cancelled as for any
    disconnect, so the line says nothing an operator must act on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Demotes the record when it is that report; keeps everything else."""
        if str(record.msg).startswith("ExecuteBatchError raised in core by servicer method"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info = None
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def configure(level: str) -> None:
    """Logs to stderr at ``level`` with timestamps; quiets grpcio's peer-gone reports."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger(GRPC_LOGGER).addFilter(PeerGoneFilter())
