"""Concurrent streams at 10 tokens/s each: the most llmrouter keeps on time, RSS per stream.

A paced upstream (``bench/upstream.py``, model ``paced-100``: 100 ms before
each token, 100 tokens, so 10 s per stream) and the load clients share one
core; a fresh ``llmrouter serve`` runs alone on the other for each level. N
streams start evenly over ``--ramp`` seconds, so all N are open together
for several seconds. A level passes when every stream completes with the
right text by the run's deadline and the p99 of the added inter-token delay
(each gap between two tokens minus the upstream's 100 ms) is at most 50 ms.

The goal level (``--streams``, 2,000) runs first; when it fails, the level is
halved until one passes, then bisected between the highest pass and the lowest
failure (at most ``--runs`` runs in all).
RSS per stream is the server's peak RSS during the run minus its RSS before,
over N; CPU is the server's CPU seconds over the run's wall time (1.0 = its
core is full). Controls at the goal level, same load: ``direct`` (the
upstream without a gateway: what the load core can do) and ``bare`` (a bare
grpc.aio server pacing its own tokens: what the Python gRPC stack can do on
one core). The load clients are ``bench/loadgo`` (grpc-go and net/http) unless
``--client python``. Writes ``bench/results/concurrency.json``.

Usage: ``python bench/concurrency.py [--streams 2000] [--runs 4] [--controls direct,bare]``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import processes as proc
from processes import BENCH, GATEWAY_CPUS, LOAD_CPUS, PYTHON

MODEL = "paced-100"
PACE_MS = 100.0
TOKENS = 100
MAX_DELAY_P99_MS = 50.0


class Watch:
    """Samples a process's RSS every 0.2 s in a thread; the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = proc.rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with contextlib.suppress(Exception):
                self.peak = max(self.peak, proc.rss_bytes(self.pid))

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def gateway(name: str, upstream: int, scratch: Path) -> Iterator[tuple[dict[str, Any], int | None]]:
    """Gateway ``name`` in front of the upstream: how to load it, its pid."""
    if name == "direct":
        yield {"kind": "http", "target": f"http://127.0.0.1:{upstream}/v1"}, None
    elif name == "bare":
        with proc.server([PYTHON, str(BENCH / "bare.py")], GATEWAY_CPUS) as bare:
            yield {"kind": "grpc", "target": f"127.0.0.1:{bare.port}"}, bare.pid
    else:
        config = proc.llmrouter_config(scratch / "llmrouter.json", upstream)
        with proc.llmrouter(config) as router:
            yield {"kind": "grpc", "target": f"127.0.0.1:{router.port}"}, router.pid


def level(  # noqa: PLR0913 - one run is all of these
    name: str, streams: int, upstream: int, scratch: Path, pool: proc.Loaders, ramp: float
) -> dict[str, Any]:
    """One run of ``streams`` concurrent streams through gateway ``name``."""
    with gateway(name, upstream, scratch) as (how, pid):
        pool.run(**how, concurrency=min(streams, 100), tokens=5, model="fast")  # warm up
        time.sleep(1.0)
        idle = proc.rss_bytes(pid) if pid else 0
        before = proc.cpu_seconds(pid) if pid else 0.0
        cores = proc.Cores().start()
        began = time.time()
        with contextlib.ExitStack() as stack:
            watch = stack.enter_context(Watch(pid)) if pid else None
            deadline = ramp + 1.5 * TOKENS * PACE_MS / 1000 + 2.0
            run = pool.run(
                **how,
                concurrency=streams,
                model=MODEL,
                tokens=TOKENS,
                stagger=ramp,
                gaps=True,
                deadline=deadline,
            )
        wall = time.time() - began
        cpu = (proc.cpu_seconds(pid) - before) if pid else 0.0
        cores.stop()
        peak = watch.peak if watch else 0
    ok = [s for s in run.streams if not s["error"]]
    delays = [gap - PACE_MS for s in ok for gap in s["gaps"]]
    ttft = [1000 * s["ttft"] for s in ok if s["ttft"] is not None]
    kinds = collections.Counter(e.split(":")[0] for e in run.errors)
    row = {
        "gateway": name,
        "streams": streams,
        "completed": len(ok),
        "errors": len(run.errors),
        "error_kinds": dict(kinds),
        "first_error": run.errors[0] if run.errors else "",
        "delay_p50_ms": proc.percentile(delays, 50),
        "delay_p99_ms": proc.percentile(delays, 99),
        "delay_max_ms": max(delays, default=float("nan")),
        "ttft_p50_ms": proc.percentile(ttft, 50),
        "ttft_p99_ms": proc.percentile(ttft, 99),
        "tokens_per_second": sum(s["tokens"] for s in run.streams) / wall,
        "wall_seconds": wall,
        "rss_idle_bytes": idle,
        "rss_peak_bytes": peak,
        "rss_per_stream_bytes": (peak - idle) / streams if pid else None,
        "server_cpu_seconds": cpu,
        "server_cpu_fraction": cpu / wall if pid else None,
        "client_cpu_fraction": run.client_cpu_seconds / wall,
        "core_busy": cores.busy,
        "core_softirq": cores.softirq,
    }
    row["passed"] = row["errors"] == 0 and row["delay_p99_ms"] <= MAX_DELAY_P99_MS
    per_stream = row["rss_per_stream_bytes"]
    print(
        f"{name:10} x{streams:<5} {'pass' if row['passed'] else 'FAIL'}  "
        f"delay p50 {row['delay_p50_ms']:7.1f} p99 {row['delay_p99_ms']:7.1f} ms  "
        f"ttft p99 {row['ttft_p99_ms']:7.0f} ms  errors {row['errors']} {dict(kinds)}  "
        f"cpu {row['server_cpu_fraction'] or 0:.2f}  cores {cores.busy}  rss/stream "
        f"{per_stream / 1024 if per_stream is not None else float('nan'):.1f} KiB",
        flush=True,
    )
    return row


def search(goal: int, runs: int, measure: Any) -> tuple[list[dict[str, Any]], int]:
    """The goal level, then halving until a level passes, then bisection between the
    highest pass and the lowest failure while runs are left; every row and the highest
    level passed (0 when none did)."""
    rows = [measure(goal)]
    low, high = (goal, goal) if rows[0]["passed"] else (0, goal)
    step = max(25, goal // 40)
    while len(rows) < runs and high - low > step:
        middle = high // 2 if low == 0 else round((low + high) / 2 / step) * step
        if middle < step:
            break
        rows.append(measure(middle))
        low, high = (middle, high) if rows[-1]["passed"] else (low, middle)
    return rows, low


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=2000, help="the goal level")
    parser.add_argument("--runs", type=int, default=5, help="llmrouter runs at most")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which streams start")
    parser.add_argument("--controls", default="direct,bare")
    parser.add_argument("--client", default="go", choices=("go", "python"))
    parser.add_argument("--processes", type=int, default=2, help="load processes")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "concurrency.json")
    args = parser.parse_args()
    machine = proc.machine_state()
    with (
        tempfile.TemporaryDirectory() as scratch,
        proc.server([PYTHON, str(BENCH / "upstream.py")], LOAD_CPUS) as upstream,
        proc.loaders(args.processes, args.client) as pool,
    ):

        def measure(name: str, streams: int) -> dict[str, Any]:
            return level(name, streams, upstream.port, Path(scratch), pool, args.ramp)

        rows, best = search(args.streams, args.runs, lambda n: measure("llmrouter", n))
        controls = [measure(name, args.streams) for name in filter(None, args.controls.split(","))]
    results = {
        "machine": machine,
        "machine_after": proc.machine_state(),
        "model": MODEL,
        "tokens": TOKENS,
        "ramp_seconds": args.ramp,
        "client": args.client,
        "load_processes": args.processes,
        "goal_streams": args.streams,
        "max_delay_p99_ms": MAX_DELAY_P99_MS,
        "llmrouter": rows,
        "highest_passed": best,
        "controls": controls,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
