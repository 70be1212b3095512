"""``llmrouter stats`` against an in-process server with a known mix of streams."""

from __future__ import annotations

import asyncio
import re

import grpc
import pytest

from tests.cli.process import run_cli
from tests.helpers import generate, scripted_config, start
from tests.telemetry.stats_serving import stats_serving

pytestmark = pytest.mark.timeout(60)

WIDE = {"COLUMNS": "200"}
"""A terminal wide enough that no table wraps."""


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


async def test_stats_prints_the_routes_streams_and_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with stats_serving(scripted_config("fake")) as (served, _):
        for _ in range(3):
            await generate(served.stub, start("hello"))
        with pytest.raises(grpc.aio.AioRpcError):
            await generate(served.stub, start("fail"))

        result = await asyncio.to_thread(
            run_cli, "stats", "--address", served.address, env=WIDE, timeout=30
        )

    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].startswith("counts since ")
    assert lines[0].endswith("; success, latencies and rates over the last 5m")
    header = next(line for line in lines if line.lstrip().startswith("route "))
    assert _cells(header) == [
        "route", "created", "running", "completed", "failed", "cancelled", "tokens",
        "success", "ttft p50/p95/p99", "inter-token p50/p95/p99", "tokens/s",
    ]  # fmt: skip
    route = _cells(next(line for line in lines if line.lstrip().startswith("fake-model ")))
    total = _cells(next(line for line in lines if line.lstrip().startswith("total ")))
    for row in (route, total):
        assert row[1:8] == ["4", "0", "3", "1", "0", "13", "75.0%"]  # 1 token before the 400
        assert re.fullmatch(r"(\d+ms/){2}\d+ms", row[8])
    fastest = [_cells(line) for line in lines if line.lstrip().startswith("fastest   gen-")]
    assert [(row[2], row[3], row[7]) for row in fastest] == [("fake-model", "fake/m", "4")] * 3
    error = _cells(next(line for line in lines if "BACKEND_STATUS" in line))
    assert error[:4] == ["fake-model", "BACKEND_STATUS", "INVALID_ARGUMENT", "1"]
    assert error[4] == "route 'fake-model': backend 'fake': HTTP 400: no such thing"


async def test_stats_of_an_unknown_model_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    async with stats_serving(scripted_config("fake")) as (served, _):
        result = await asyncio.to_thread(
            run_cli, "stats", "--model", "nope", "--address", served.address, timeout=30
        )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        "llmrouter: NOT_FOUND: GetStatsRequest.model: unknown model 'nope'; "
    )
    assert result.stderr.count("\n") == 1


def test_watch_needs_a_positive_number_of_seconds() -> None:
    result = run_cli("stats", "--watch", "0")

    assert result.returncode == 2
    assert result.stderr == (
        "llmrouter: argument --watch: '0' is not a positive number of seconds; "
        "see 'llmrouter stats --help'\n"
    )
