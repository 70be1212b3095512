"""Added latency: time to first token and inter-token delay through llmrouter, minus direct.

A paced upstream (``bench/upstream.py``, model ``paced-10``: 10 ms before each
token) and the load clients share one core; ``llmrouter serve`` runs alone on
the other. The same load processes read the upstream directly (HTTP) and
through the router (gRPC) in alternating batches, so both see the same
machine at nearly the same time; what the router adds is the difference of
the two in each statistic. The ``bare`` grpc.aio server (pacing its own
tokens the same way, no upstream) shows what the Python gRPC stack alone adds.

* 1 stream: streams of 5 tokens one after another; added TTFT p50 (goal ≤ 1 ms).
* 100 streams: 100 workers whose starts are spread evenly over one stream's
  length, so about 100 streams are always open and new ones start all the
  time; each runs 50-token streams back to back. Added TTFT p99 (goal ≤ 5 ms)
  and added inter-token delay p50/p99 (a gap minus the upstream's 10 ms).
  Each worker's first stream (the ramp up) is left out.

The load clients are ``bench/loadgo`` (grpc-go and net/http: a few tens of µs
of the load core per event, where grpc.aio spends over 100) unless
``--client python``. Writes ``bench/results/latency.json``.

Usage: ``python bench/latency.py [--rounds 4] [--client go|python]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import processes as proc
from processes import BENCH, GATEWAY_CPUS, LOAD_CPUS, PYTHON

MODEL = "paced-10"
PACE_MS = 10.0
ONE = {"concurrency": 1, "per_worker": 12, "tokens": 5}
HUNDRED = {"concurrency": 100, "duration": 2.0, "stagger": 0.5, "tokens": 50, "gaps": True}


def summary(runs: list[proc.LoadRun], steady: bool) -> dict[str, Any]:
    """TTFT and inter-token gaps (minus the pace) of the streams of ``runs``, in ms."""
    streams = [s for run in runs for s in run.streams if not (steady and s["round"] == 0)]
    ok = [s for s in streams if not s["error"] and s["ttft"] is not None]
    ttft = [1000 * s["ttft"] for s in ok]
    delays = [gap - PACE_MS for s in ok for gap in s["gaps"]]
    row = {
        "streams": len(streams),
        "errors": len(streams) - len(ok),
        "first_error": next((s["error"] for s in streams if s["error"]), ""),
        "ttft_p50_ms": proc.percentile(ttft, 50),
        "ttft_p99_ms": proc.percentile(ttft, 99),
        "client_cpu_us_per_event": 1e6
        * sum(r.client_cpu_seconds for r in runs)
        / max(1, sum(s["events"] for s in streams)),
    }
    if delays:
        row |= {
            "gaps": len(delays),
            "delay_p50_ms": proc.percentile(delays, 50),
            "delay_p99_ms": proc.percentile(delays, 99),
        }
    return row


def added(rows: dict[str, dict[str, Any]], base: str = "direct") -> dict[str, dict[str, float]]:
    """Each gateway's statistics minus the direct ones."""
    keys = ("ttft_p50_ms", "ttft_p99_ms", "delay_p50_ms", "delay_p99_ms")
    return {
        name: {key: row[key] - rows[base][key] for key in keys if key in row}
        for name, row in rows.items()
        if name != base
    }


def phase(  # noqa: PLR0913 - one phase is all of these
    pool: proc.Loaders,
    targets: dict[str, dict[str, Any]],
    batch: dict[str, Any],
    rounds: int,
    steady: bool,
    servers: dict[str, int],
) -> dict[str, Any]:
    """``rounds`` rounds of one batch per target, in an order that turns each round."""
    runs: dict[str, list[proc.LoadRun]] = {name: [] for name in targets}
    cpu = dict.fromkeys(targets, 0.0)
    wall = dict.fromkeys(targets, 0.0)
    cores: dict[str, list[list[float]]] = {name: [] for name in targets}
    names = list(targets)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            pid = servers.get(name)
            before, began = (proc.cpu_seconds(pid) if pid else 0.0), time.time()
            sampler = proc.Cores().start()
            run = pool.run(**targets[name], **batch, deadline=120.0)
            cores[name].append(sampler.stop().busy)
            wall[name] += time.time() - began
            cpu[name] += (proc.cpu_seconds(pid) - before) if pid else 0.0
            runs[name].append(run)
    rows = {name: summary(runs[name], steady) for name in targets}
    for name, row in rows.items():
        events = sum(s["events"] for run in runs[name] for s in run.streams)
        row["gateway_cpu_us_per_event"] = 1e6 * cpu[name] / events if servers.get(name) else None
        row["core_busy"] = [round(sum(c) / len(c), 3) for c in zip(*cores[name], strict=True)]
        row["wall_seconds"] = wall[name]
    return {"gateways": rows, "added": added(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="batches per target and phase")
    parser.add_argument("--client", default="go", choices=("go", "python"))
    parser.add_argument("--processes", type=int, default=2, help="load processes")
    parser.add_argument("--gateways", default="llmrouter,bare")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latency.json")
    args = parser.parse_args()
    gateways = args.gateways.split(",")
    with (
        tempfile.TemporaryDirectory() as scratch,
        proc.server([PYTHON, str(BENCH / "upstream.py")], LOAD_CPUS) as upstream,
        proc.llmrouter(proc.llmrouter_config(Path(scratch) / "r.json", upstream.port)) as router,
        proc.server([PYTHON, str(BENCH / "bare.py")], GATEWAY_CPUS) as bare,
        proc.loaders(args.processes, args.client) as pool,
    ):
        every = {
            "direct": {"kind": "http", "target": f"http://127.0.0.1:{upstream.port}/v1"},
            "llmrouter": {"kind": "grpc", "target": f"127.0.0.1:{router.port}"},
            "bare": {"kind": "grpc", "target": f"127.0.0.1:{bare.port}"},
        }
        targets = {name: {**every[name], "model": MODEL} for name in ["direct", *gateways]}
        servers = {"llmrouter": router.pid, "bare": bare.pid}
        for how in targets.values():  # warm up: connections, imports, caches
            pool.run(**how, concurrency=100, tokens=5)
        results = {
            "machine": proc.machine_state(),
            "model": MODEL,
            "client": args.client,
            "load_processes": args.processes,
            "rounds": args.rounds,
            "one_stream": {"batch": ONE} | phase(pool, targets, ONE, args.rounds, False, servers),
            "hundred_streams": {"batch": HUNDRED}
            | phase(pool, targets, HUNDRED, args.rounds, True, servers),
        }
    results["machine_after"] = proc.machine_state()
    for label in ("one_stream", "hundred_streams"):
        for name, row in results[label]["gateways"].items():
            extra = results[label]["added"].get(name, {})
            print(
                f"{label:16} {name:10} ttft p50 {row['ttft_p50_ms']:7.2f} "
                f"p99 {row['ttft_p99_ms']:7.2f} ms  delay p50 {row.get('delay_p50_ms', 0):6.2f} "
                f"p99 {row.get('delay_p99_ms', 0):6.2f} ms  errors {row['errors']}  added "
                + " ".join(f"{k} {v:.2f}" for k, v in extra.items()),
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
