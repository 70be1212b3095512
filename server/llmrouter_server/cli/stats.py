"""``llmrouter stats``: the GetStats report as tables, once or refreshed (``--watch``).

Counters (created, running, completed, failed, cancelled, tokens) count since
the server started; success, latencies and rates cover the report's window.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterable
from datetime import datetime

import grpc
from google.protobuf import duration_pb2
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from llmrouter_server.cli.errors import EXIT_OK, CliError, rpc_failure

STATS_TIMEOUT = 10.0
"""Seconds ``stats`` waits for each report."""

PIPED_WIDTH = 200
"""Columns of the tables when stdout is not a terminal (and ``COLUMNS`` is unset)."""

_ROUTE_COLUMNS = (
    "route", "created", "running", "completed", "failed", "cancelled", "tokens",
    "success", "ttft p50/p95/p99", "inter-token p50/p95/p99", "tokens/s",
)  # fmt: skip
_STREAM_COLUMNS = ("", "stream", "route", "model", "tokens/s", "ttft", "duration", "tokens")
_ERROR_COLUMNS = ("route", "reason", "code", "count", "last message")
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


async def stats(args: argparse.Namespace) -> int:
    """Prints the report; with ``--watch``, redraws it every few seconds until Ctrl-C."""
    # Piped output has no terminal width: rich would squeeze the tables into 80 columns.
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    console = Console(width=PIPED_WIDTH if piped else None)
    async with args.credentials.channel(args.address) as channel:
        stub: svc_grpc.RouterServiceAsyncStub = svc_grpc.RouterServiceStub(channel)
        request = svc_pb.GetStatsRequest(model=args.model)
        if args.watch is None:
            console.print(render(await _fetch(stub, request, args)))
            return EXIT_OK
        with Live(render(await _fetch(stub, request, args)), console=console) as live:
            while True:
                await asyncio.sleep(args.watch)
                live.update(render(await _fetch(stub, request, args)))


async def _fetch(
    stub: svc_grpc.RouterServiceAsyncStub,
    request: svc_pb.GetStatsRequest,
    args: argparse.Namespace,
) -> svc_pb.GetStatsResponse:
    try:
        return await stub.GetStats(request, timeout=STATS_TIMEOUT)
    except grpc.aio.AioRpcError as error:
        raise _failure(error, args) from error


def _failure(error: grpc.aio.AioRpcError, args: argparse.Namespace) -> CliError:
    return rpc_failure(error, args.address, timeout=STATS_TIMEOUT, credentials=args.credentials)


def render(reply: svc_pb.GetStatsResponse) -> RenderableType:
    """The report as a heading and its tables (streams and errors only when there are any)."""
    parts: list[RenderableType] = [_heading(reply), _routes(reply)]
    if reply.fastest or reply.slowest:
        parts.append(_streams(reply))
    if any(report.errors for report in reply.per_model):
        parts.append(_errors(reply))
    return Group(*parts)


def _heading(reply: svc_pb.GetStatsResponse) -> Text:
    since = datetime.fromtimestamp(reply.counting_since.ToSeconds()).isoformat(" ", "seconds")
    line = f"counts since {since}; success, latencies and rates over the last {_span(reply.window)}"
    if reply.window_truncated:
        line += " (more streams finished than kept: the most recent only)"
    return Text(line)


def _routes(reply: svc_pb.GetStatsResponse) -> Table:
    table = _table("routes", _ROUTE_COLUMNS, numeric=range(1, len(_ROUTE_COLUMNS)))
    for report in reply.per_model:
        table.add_row(*_route_row(report.model, report))
    table.add_section()
    table.add_row(*_route_row("total", reply.total), style="bold")
    return table


def _route_row(name: str, report: ops_pb.StatsReport) -> list[str]:
    finished = report.recent_completed + report.recent_failed + report.recent_cancelled
    return [
        name,
        str(report.streams_created),
        str(report.streams_running),
        str(report.streams_completed),
        str(report.streams_failed),
        str(report.streams_cancelled),
        str(report.completion_tokens),
        f"{report.success_rate:.1%}" if finished else "-",
        _percentiles(report.time_to_first_token),
        _percentiles(report.inter_token),
        f"{report.tokens_per_second:.1f}" if report.tokens_per_second else "-",
    ]


def _streams(reply: svc_pb.GetStatsResponse) -> Table:
    table = _table("fastest and slowest streams", _STREAM_COLUMNS, numeric=range(4, 8))
    for label, samples in (("fastest", reply.fastest), ("slowest", reply.slowest)):
        for sample in samples:
            table.add_row(
                label,
                sample.stream_id,
                sample.route,
                f"{sample.backend}/{sample.model}",
                f"{sample.tokens_per_second:.1f}",
                _span(sample.time_to_first_token),
                _span(sample.duration),
                str(sample.completion_tokens),
            )
        table.add_section()
    return table


def _errors(reply: svc_pb.GetStatsResponse) -> Table:
    table = _table("errors", _ERROR_COLUMNS, numeric=(3,))
    for report in reply.per_model:
        for error in report.errors:
            table.add_row(
                report.model,
                error.reason,
                _CODE_NAMES.get(error.code, str(error.code)),
                str(error.count),
                error.last_message,
            )
    return table


def _table(title: str, columns: tuple[str, ...], *, numeric: Iterable[int]) -> Table:
    """A table whose ``numeric`` columns (by index) are right-aligned."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    right = set(numeric)
    for index, column in enumerate(columns):
        table.add_column(column, justify="right" if index in right else "left")
    return table


def _percentiles(summary: ops_pb.LatencySummary) -> str:
    if not summary.count:
        return "-"
    return "/".join(_span(value) for value in (summary.p50, summary.p95, summary.p99))


def _span(duration: duration_pb2.Duration) -> str:
    """A duration as people read it: ``850ms``, ``2.4s``, ``5m``, ``1h30m``."""
    seconds = duration.ToNanoseconds() / 1e9
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{rest}s" if rest else "") or "0s"
