"""Translates the domain's stats report into a ``GetStatsResponse``."""

from __future__ import annotations

from google.protobuf import duration_pb2, timestamp_pb2
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.api.status import status_code
from llmrouter_server.telemetry.summary import (
    ErrorTally,
    Latency,
    RouteStats,
    StatsReport,
    StreamRecord,
)


def stats_response(report: StatsReport) -> svc_pb.GetStatsResponse:
    """The response for a report."""
    return svc_pb.GetStatsResponse(
        total=_route_stats(report.total),
        per_model=[_route_stats(stats) for stats in report.per_route],
        window=_duration(report.window),
        counting_since=_timestamp(report.counting_since),
        generated_at=_timestamp(report.generated_at),
        fastest=[_sample(record) for record in report.fastest],
        slowest=[_sample(record) for record in report.slowest],
        window_truncated=report.truncated,
    )


def _route_stats(stats: RouteStats) -> ops_pb.StatsReport:
    counts = stats.counts
    return ops_pb.StatsReport(
        model=stats.route,
        streams_created=counts.created,
        streams_completed=counts.completed,
        streams_failed=counts.failed,
        streams_cancelled=counts.cancelled,
        streams_running=counts.running,
        completion_tokens=counts.completion_tokens,
        success_rate=stats.success_rate,
        time_to_first_token=_latency(stats.time_to_first_token),
        inter_token=_latency(stats.inter_token),
        tokens_per_second=stats.tokens_per_second,
        recent_completed=stats.recent_completed,
        recent_failed=stats.recent_failed,
        recent_cancelled=stats.recent_cancelled,
        recent_completion_tokens=stats.recent_completion_tokens,
        errors=[_error_count(tally) for tally in stats.errors],
    )


def _latency(latency: Latency) -> ops_pb.LatencySummary:
    return ops_pb.LatencySummary(
        p50=_duration(latency.p50),
        p90=_duration(latency.p90),
        p95=_duration(latency.p95),
        p99=_duration(latency.p99),
        count=latency.count,
    )


def _error_count(tally: ErrorTally) -> ops_pb.ErrorCount:
    return ops_pb.ErrorCount(
        reason=tally.reason,
        code=status_code(tally.latest).value[0],
        count=tally.count,
        last_message=tally.latest.message,
        last_failed_at=_timestamp(tally.latest_at),
    )


def _sample(record: StreamRecord) -> ops_pb.StreamSample:
    return ops_pb.StreamSample(
        stream_id=record.stream_id,
        route=record.route,
        model=record.model,
        backend=record.backend,
        tokens_per_second=record.tokens_per_second,
        time_to_first_token=_duration(record.time_to_first_token or 0.0),
        duration=_duration(record.duration),
        completion_tokens=record.completion_tokens,
        finished_at=_timestamp(record.finished_wall),
        tenant=record.tenant,
    )


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromNanoseconds(round(seconds * 1e9))
    return timestamp
