"""grpcio's report of a write to a departed client is demoted to DEBUG."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from llmrouter_server.logs import GRPC_LOGGER, PeerGoneFilter


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord(GRPC_LOGGER, logging.ERROR, __file__, 1, message, (), None)


def test_the_peer_gone_report_becomes_debug_and_is_dropped_below_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=GRPC_LOGGER)
    record = _record("ExecuteBatchError raised in core by servicer method [%s]")

    assert PeerGoneFilter().filter(record) is False
    assert record.levelno == logging.DEBUG


def test_other_grpc_errors_are_kept() -> None:
    record = _record("Unexpected [%s] raised by servicer method [%s]")

    assert PeerGoneFilter().filter(record) is True
    assert record.levelno == logging.ERROR


CONFIGURED = """
import logging
from llmrouter_server.logs import configure
configure("info", {fmt!r})
log = logging.getLogger("llmrouter_server.x")
log.info("stream %s started", "gen-1", extra={{"stream_id": "gen-1"}})
log.debug("not shown")
"""


@pytest.mark.timeout(30)
def test_the_json_format_writes_one_object_per_line() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CONFIGURED.format(fmt="json")],
        capture_output=True, text=True, check=True, timeout=20,
    )  # fmt: skip

    [line] = result.stderr.splitlines()
    parsed = json.loads(line)
    assert list(parsed) == ["time", "level", "logger", "message", "stream_id"]
    assert (parsed["level"], parsed["logger"], parsed["message"], parsed["stream_id"]) == (
        "INFO",
        "llmrouter_server.x",
        "stream gen-1 started",
        "gen-1",
    )


@pytest.mark.timeout(30)
def test_the_text_format_is_as_before() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CONFIGURED.format(fmt="text")],
        capture_output=True, text=True, check=True, timeout=20,
    )  # fmt: skip

    [line] = result.stderr.splitlines()
    assert line.endswith(" INFO llmrouter_server.x: stream gen-1 started")
