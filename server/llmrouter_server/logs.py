"""Logging set-up for ``llmrouter serve``: text for people, JSON lines for pipelines.

Log calls pass what they are about as structured fields with ``extra=``
(``stream_id``, ``route``, ``model``, ``target``, ``attempt``, ``tenant``, ...).
The text format shows the message as it is (messages name what they are
about); the JSON format writes one object per line with ``time``, ``level``,
``logger`` and ``message``, then those fields, then ``exception`` when there
is a traceback. No log call passes a credential: a principal carries its key
id, never the key.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal

GRPC_LOGGER = "grpc._cython.cygrpc"
"""Where grpcio's asyncio server logs failures of its own operations."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The text line: time, level, logger, message."""

LogFormat = Literal["text", "json"]
"""The values of ``logging.format``."""

_RECORD_ATTRIBUTES = frozenset(
    [*vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None)), "message", "asctime"]
)
"""What every record has; anything else on a record came with ``extra=``."""


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


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record's time (UTC, ISO 8601), level, logger, message and fields."""
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def fields(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields a log call passed with ``extra=``."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
    }


def configure(level: str, log_format: LogFormat = "text") -> None:
    """Logs to stderr at ``level`` in ``log_format``; quiets grpcio's peer-gone reports."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.getLogger(GRPC_LOGGER).addFilter(PeerGoneFilter())
    # Neither format shows where a line was logged from, nor the thread or
    # process: skip finding them for every record (the logging HOWTO's
    # "Optimization" section), about a third of a line's cost.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
