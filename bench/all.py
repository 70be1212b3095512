"""Every benchmark in sequence, then the report: what ``make bench`` runs.

Each benchmark runs as a subprocess with a timeout of its own, cut to what is
left of ``--budget`` (14 minutes) less 60 % of each later one's, its output
passed through; one that fails
or times out is recorded and the next one runs. A timed-out benchmark gets
SIGINT (so its ``with`` blocks stop the servers it started), then SIGKILL for
it and every process it started 15 s later. Each benchmark's results file is
removed before it runs, so a failed one shows as "not run" rather than as an
older run's numbers. The steps, their commands, times and outcomes go to
``bench/results/all.json``; then ``bench/report.py`` rewrites ``BENCHMARKS.md``.

Usage: ``python bench/all.py [--budget 840] [--only relay,latency]``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import processes

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
REPORT_SECONDS = 30


@dataclass(frozen=True)
class Step:
    """One benchmark: its name (and results file's), arguments and timeout."""

    name: str
    args: tuple[str, ...]
    timeout: float


STEPS = (
    Step("relay", ("bench/relay.py", "--concurrency", "1,20,50,500",
                   "--peer-concurrency", "1,20,50", "--seconds", "3"), 240),
    Step("latency", ("bench/latency.py", "--rounds", "3"), 80),
    Step("concurrency", ("bench/concurrency.py", "--runs", "5"), 210),
    Step("stalled_streams", ("bench/stalled_streams.py",), 180),
    Step("fairness", ("bench/fairness.py",), 110),
    Step("retention", ("bench/retention.py", "--thousands", "4"), 110),
    Step("embedded", ("bench/embedded.py",), 150),
)  # fmt: skip
"""Runs on 2 cores took about 180, 50, 190, over 130, 70, 80 and 90 s."""
RESERVE = 0.6
"""A step may not eat into this share of each later step's timeout."""


def run(step: Step, timeout: float) -> dict[str, Any]:
    """Runs one step; its record."""
    command = ["python", *step.args]
    record: dict[str, Any] = {"name": step.name, "command": command, "timeout": round(timeout)}
    if not (ROOT / step.args[0]).exists():
        return record | {"seconds": 0.0, "returncode": None, "failure": "missing"}
    with contextlib.suppress(FileNotFoundError):
        (RESULTS / f"{step.name}.json").unlink()
    print(f"\n=== {' '.join(command)}  (timeout {timeout:.0f} s)", flush=True)
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, *step.args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    tail: collections.deque[str] = collections.deque(maxlen=15)
    reader = threading.Thread(target=_pass_through, args=(process, tail), daemon=True)
    reader.start()
    try:
        process.wait(timeout)
        failure = "" if process.returncode == 0 else f"exit {process.returncode}"
    except subprocess.TimeoutExpired:
        # SIGINT lets the benchmark write what it measured before it stops.
        processes.stop(process, signal.SIGINT, grace=15)
        failure = f"timed out after {timeout:.0f} s"
    reader.join(5)
    seconds = time.monotonic() - began
    print(f"=== {step.name}: {failure or 'ok'} in {seconds:.0f} s", flush=True)
    return record | {
        "seconds": seconds,
        "returncode": process.returncode,
        "failure": failure,
        "tail": list(tail) if failure else [],
    }


def _pass_through(process: subprocess.Popen[str], tail: collections.deque[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        tail.append(line.rstrip()[:300])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=840.0, help="seconds for every step")
    parser.add_argument("--only", default="", help="comma-separated step names")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    wanted = set(filter(None, args.only.split(",")))
    began = time.monotonic()
    steps = []
    chosen = [step for step in STEPS if not wanted or step.name in wanted]
    for index, step in enumerate(chosen):
        later = sum(RESERVE * s.timeout for s in chosen[index + 1 :] if (ROOT / s.args[0]).exists())
        left = args.budget - REPORT_SECONDS - (time.monotonic() - began) - later
        if left < 20:
            steps.append(
                {
                    "name": step.name,
                    "command": ["python", *step.args],
                    "seconds": 0.0,
                    "returncode": None,
                    "failure": "no time left in the budget",
                }
            )
            continue
        steps.append(run(step, min(step.timeout, left)))
    record = {
        "steps": steps,
        "seconds": time.monotonic() - began,
        "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    (RESULTS / "all.json").write_text(json.dumps(record, indent=1))
    subprocess.run(
        [sys.executable, "bench/report.py"], cwd=ROOT, check=True, timeout=REPORT_SECONDS * 4
    )
    failed = [s["name"] for s in steps if s["failure"]]
    print(
        f"done in {record['seconds']:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else "")
    )


if __name__ == "__main__":
    main()
