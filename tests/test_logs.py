"""grpcio's report of a write to a departed client is demoted to DEBUG."""

from __future__ import annotations

import logging

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
