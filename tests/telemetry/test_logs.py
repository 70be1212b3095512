"""JSON log lines: one object per line, with the stream's fields, and never a key."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from llmrouter_server.config import Config
from llmrouter_server.logs import JsonFormatter
from tests.helpers import scripted_config, start
from tests.telemetry.stats_serving import stats_serving

pytestmark = pytest.mark.timeout(30)

SECRET = "sk-do-not-log-me"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Every log line at DEBUG, as the JSON format writes it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _parsed(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _config() -> Config:
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    key = {"id": "ci-key", "sha256": digest, "tenant": "team-a", "role": "admin"}
    return scripted_config("fake", auth={"api_keys": [key]})


async def test_a_stream_logs_its_start_events_and_end_as_json(
    monkeypatch: pytest.MonkeyPatch, lines: io.StringIO
) -> None:
    async with stats_serving(_config()) as (served, _):
        events = await generate_as_key(served.stub)

    records = _parsed(lines)
    stream_id = events[0].stream_id
    mine = [r for r in records if r.get("stream_id") == stream_id]
    started = next(r for r in mine if str(r["message"]).startswith(f"stream {stream_id} started"))
    finished = next(r for r in mine if r.get("state") == "completed")
    assert list(started)[:4] == ["time", "level", "logger", "message"]
    assert (started["level"], started["route"], started["model"], started["tenant"]) == (
        "INFO",
        "fake-model",
        "m",
        "team-a",
    )
    assert started["message"] == (
        f"stream {stream_id} started on route fake-model (model fake/m, tenant team-a)"
    )
    assert (finished["completion_tokens"], finished["finish_reason"]) == (4, "stop")
    assert (finished["target"], finished["attempt"]) == ("fake/m", 1)
    assert isinstance(finished["duration_seconds"], float)
    debug = [r["event"] for r in mine if r["level"] == "DEBUG"]
    assert debug == ["Started", "Chunk", "Chunk", "Chunk", "Chunk", "Completed"]
    assert str(started["time"]).endswith("Z")
    assert SECRET not in lines.getvalue()


async def test_a_failed_attempt_logs_its_fields(
    monkeypatch: pytest.MonkeyPatch, lines: io.StringIO
) -> None:
    async with stats_serving(_config()) as (served, _):
        with pytest.raises(grpc.aio.AioRpcError):
            await generate_as_key(served.stub, "fail")

    records = _parsed(lines)
    attempt = next(r for r in records if "attempt 1 on fake/m failed" in str(r["message"]))
    failed = next(r for r in records if r.get("state") == "failed")
    assert attempt["level"] == "WARNING"
    assert (attempt["route"], attempt["target"], attempt["attempt"]) == ("fake-model", "fake/m", 1)
    assert (attempt["error_reason"], attempt["will_retry"]) == ("BACKEND_STATUS", False)
    assert (failed["level"], failed["error_reason"], failed["tenant"]) == (
        "WARNING",
        "BACKEND_STATUS",
        "team-a",
    )
    assert SECRET not in lines.getvalue()


async def generate_as_key(stub: Any, prompt: str = "hello") -> list[Any]:
    """One generation with the API key."""
    call = stub.Generate(iter([start(prompt)]), metadata=[("authorization", f"Bearer {SECRET}")])
    return [response.event async for response in call]


def _boom() -> None:
    raise ValueError("boom")


def test_a_traceback_goes_in_one_field() -> None:
    try:
        _boom()
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("here",), None)
        record.exc_info = sys.exc_info()
    record.stream_id = "gen-1"

    line = JsonFormatter().format(record)

    parsed = json.loads(line)
    assert "\n" not in line
    assert (parsed["message"], parsed["stream_id"]) == ("failed here", "gen-1")
    assert parsed["exception"].endswith("ValueError: boom")
