"""Rewrites ``BENCHMARKS.md`` (and ``bench/relay.png``) from ``bench/results/*.json``.

One table per goal of the performance issue, each row with the measured
value, the goal, their ratio and whether it is met; a goal whose results file
is missing says "not run". The machine, the versions and the exact commands
(``bench/results/all.json``, written by ``bench/all.py``) come first.

Usage: ``python bench/report.py [--results bench/results] [--out BENCHMARKS.md]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = ("litellm", "portkey", "smg")
NOT_RUN = "not run"

TOKEN_CPU_US = 40.0
ADAPTIVE_CPU_US = 15.0
EVENTS_VS_BARE = 0.8
ADDED_TTFT_P50_MS = 1.0
ADDED_TTFT_P99_MS = 5.0
STREAMS = 2000
DELAY_P99_MS = 50.0
STALLED_BYTES = 64_000
FAIRNESS_RATIO = 2.0
RETENTION_COST_RATIO = 1.25
EMBEDDED_RATIO = 0.97

Row = list[str]


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table; a dash when there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def verdict(met: bool | None) -> str:
    return "—" if met is None else ("**met**" if met else "**missed**")


def table(head: Row, rows: Iterable[Row]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def goal_row(  # noqa: PLR0913 - a row is all of these
    what: str, value: float | None, goal: float, unit: str, at_most: bool, digits: int = 3
) -> Row:
    """What, measured, goal, ratio (measured / goal) and met for a bound."""
    bound = ("≤ " if at_most else "≥ ") + f"{goal:,g}" + unit
    if value is None or math.isnan(value):
        return [what, "—", bound, "—", verdict(None)]
    met = value <= goal if at_most else value >= goal
    ratio = fmt(value / goal, 2) if goal else "—"
    return [what, fmt(value, digits) + unit, bound, ratio, verdict(met)]


GOAL_HEAD = ["what", "measured", "goal", "measured / goal", "met"]


class Results:
    """The results files present."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data: dict[str, Any] = {}
        for path in sorted(folder.glob("*.json")):
            try:
                self.data[path.stem] = json.loads(path.read_text())
            except json.JSONDecodeError as error:
                self.data[path.stem] = {"unreadable": str(error)}

    def get(self, name: str) -> Any:
        return self.data.get(name)

    def caveat(self, name: str) -> str:
        """A note when ``bench/all.py`` recorded this benchmark as failed but a results
        file is there all the same (written by another run, or before the failure)."""
        steps = {s["name"]: s for s in (self.data.get("all") or {}).get("steps", [])}
        step = steps.get(name)
        if not step or not step.get("failure") or name not in self.data:
            return ""
        when = datetime.datetime.fromtimestamp(
            (self.folder / f"{name}.json").stat().st_mtime, datetime.UTC
        ).strftime("%H:%M UTC")
        return (f"\n> `bench/all.py`'s run of this benchmark failed ({step['failure']}); the "
                f"numbers above are from `bench/results/{name}.json` as written at {when}, "
                "by that run before it failed or by another run.\n")  # fmt: skip


# --- the machine and the commands ------------------------------------------------------


def _version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "—"
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else "—"


def _cpu_model() -> str:
    with Path("/proc/cpuinfo").open() as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "—"


def _package(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "—"


def machine(results: Results) -> str:
    relay = results.get("relay") or {}
    peers = {name: (relay.get("gateways", {}).get(name) or {}).get("version") for name in PEERS}
    rows = [
        ["CPU", _cpu_model()],
        ["cores", str(os.cpu_count())],
        ["kernel", platform.release()],
        ["Python", platform.python_version()],
        ["grpcio", _package("grpcio")],
        ["httpx", _package("httpx")],
        ["protobuf", _package("protobuf")],
        ["Go (bench/loadgo)", _version(["go", "env", "GOVERSION"])],
        ["Node (Portkey)", _version(["node", "--version"])],
        *([f"peer {n}", v or "not installed / not run"] for n, v in peers.items()),
    ]
    skipped = relay.get("skipped") or {}
    notes = "".join(f"\n- {name} was skipped: {why}" for name, why in skipped.items())
    return "## Machine\n\n" + table(["", ""], rows) + notes + "\n" + _noise(results)


def _noise(results: Results) -> str:
    """What else ran on the machine while the benchmarks did."""
    lines = []
    for name, data in results.data.items():
        states = [data.get(key) for key in ("machine", "machine_after") if isinstance(data, dict)]
        for state in (s for s in states if isinstance(s, dict)):
            others = ", ".join(
                f"{o['command']} ({o['cpu_percent']:.0f} %)"
                for o in state.get("other_processes", [])
            )
            if others or max(state.get("loadavg", [0])) > 1.5:
                lines.append(
                    f"- {name}: load average {state.get('loadavg')}; "
                    f"other processes using CPU: {others or 'none seen'}"
                )
    if not lines:
        return ""
    return (
        "\nThe machine was not quiet during some runs (another job's CPU use skews every "
        "number on 2 cores):\n\n" + "\n".join(lines) + "\n"
    )


def commands(results: Results) -> str:
    run = results.get("all")
    text = (
        "## Commands\n\n`make bench` runs `bash bench/install_peers.sh`, then `python bench/all.py`"
    )
    text += " (each step below as a subprocess with its own timeout, then this report).\n\n"
    if not run:
        return text + "No `bench/all.py` run recorded (`bench/results/all.json` is missing).\n"
    rows = [
        [
            f"`{' '.join(step['command'])}`",
            fmt(step["seconds"], 0) + " s",
            "ok"
            if step["returncode"] == 0
            else step.get("failure") or f"exit {step['returncode']}",
        ]
        for step in run["steps"]
    ]
    when = run.get("finished", "")
    return (
        text
        + table(["command", "took", "outcome"], rows)
        + f"\nIn all {fmt(run.get('seconds'), 0)} s, finished {when}.\n"
    )


# --- 1 and 2: relay -----------------------------------------------------------------------


def _rows(relay: dict[str, Any], name: str) -> dict[int, dict[str, Any]]:
    gateway = (relay.get("gateways") or {}).get(name) or {}
    return {row["concurrency"]: row for row in gateway.get("rows", [])}


def _at(relay: dict[str, Any], name: str, level: int, key: str) -> float | None:
    row = _rows(relay, name).get(level)
    return None if row is None else row.get(key)


def _errors(relay: dict[str, Any], *names: str, level: int) -> str:
    """`` (N errors)`` when a run of ``names`` at ``level`` had failed streams."""
    count = sum(_rows(relay, name).get(level, {}).get("errors", 0) for name in names)
    return f" ({count} streams failed)" if count else ""


def goal_cpu(relay: dict[str, Any] | None) -> str:
    text = "## 1. CPU per relayed token\n\nGateway process CPU seconds over tokens delivered, "
    text += (
        "fast upstream, 20 streams, 200 tokens each; below every peer and at most the bound.\n\n"
    )
    if not relay:
        return text + NOT_RUN + "\n"
    peers = {p: _at(relay, p, 20, "cpu_us_per_token") for p in PEERS}
    best_peer = min((v for v in peers.values() if v is not None), default=None)
    rows = []
    for name, label, bound in (
        ("llmrouter", "llmrouter TOKEN", TOKEN_CPU_US),
        ("llmrouter-adaptive", "llmrouter ADAPTIVE", ADAPTIVE_CPU_US),
    ):
        value = _at(relay, name, 20, "cpu_us_per_token")
        rows.append(goal_row(f"{label}, µs/token", value, bound, " µs", True))
        for peer, theirs in peers.items():
            if theirs is not None and value is not None:
                rows.append(
                    [
                        f"{label} vs {peer} ({fmt(theirs)} µs)",
                        fmt(value / theirs, 2) + "x",
                        "< 1x",
                        fmt(value / theirs, 2),
                        verdict(value < theirs),
                    ]
                )
    for name in ("bare", *PEERS):
        value = _at(relay, name, 20, "cpu_us_per_token")
        rows.append(
            [f"{name} (reference), µs/token", fmt(value) + (" µs" if value else ""), "—", "—", "—"]
        )
    note = "" if best_peer is not None else "\nNo peer ran, so 'below every peer' is unchecked.\n"
    return text + table(GOAL_HEAD, rows) + note


def goal_throughput(relay: dict[str, Any] | None) -> str:
    text = "## 2. Throughput\n\nTokens/s at 1 and 20 streams against the best peer in the same "
    text += (
        "run; events/s with TOKEN against the bare grpc.aio server at 1, 50 and 500 streams.\n\n"
    )
    if not relay:
        return text + NOT_RUN + "\n"
    rows = []
    for level in (1, 20):
        peers = {p: _at(relay, p, level, "tokens_per_second") for p in PEERS}
        best = max(((v, p) for p, v in peers.items() if v is not None), default=None)
        for name in ("llmrouter", "llmrouter-adaptive"):
            value = _at(relay, name, level, "tokens_per_second")
            if best is None or value is None:
                rows.append([f"{name}, {level} stream(s)", fmt(value), "no peer ran", "—", "—"])
                continue
            rows.append(
                [
                    f"{name}, {level} stream(s), tokens/s",
                    fmt(value),
                    f"≥ {best[1]}'s {fmt(best[0])}",
                    fmt(value / best[0], 2),
                    verdict(value >= best[0]),
                ]
            )
    for level in (1, 50, 500):
        ours = _at(relay, "llmrouter", level, "events_per_second")
        bare = _at(relay, "bare", level, "events_per_second")
        ratio = ours / bare if ours and bare else None
        rows.append(
            goal_row(
                f"TOKEN events/s ÷ bare at {level} ({fmt(ours)} / {fmt(bare)})"
                + _errors(relay, "llmrouter", "bare", level=level),
                ratio,
                EVENTS_VS_BARE,
                "",
                False,
            )
        )
    return text + table(GOAL_HEAD, rows) + "\n" + relay_table(relay)


def relay_table(relay: dict[str, Any]) -> str:
    rows = [
        [name, str(row["concurrency"]), fmt(row["tokens_per_second"], 0),
         fmt(row["events_per_second"], 0), fmt(row["ttft_p50_ms"]),
         fmt(row.get("cpu_us_per_token")), fmt(row.get("client_cpu_us_per_event")),
         str(row["errors"])]
        for name, gateway in (relay.get("gateways") or {}).items()
        for row in gateway.get("rows", [])
    ]  # fmt: skip
    head = [
        "gateway",
        "streams",
        "tokens/s",
        "events/s",
        "TTFT p50 ms",
        "gateway CPU µs/token",
        "client CPU µs/event",
        "errors",
    ]
    return (
        "Every relay run (`bench/relay.py`; the plot is `bench/relay.png`):\n\n"
        + table(head, rows)
        + "\n![relay](bench/relay.png)\n"
    )


def plot(relay: dict[str, Any] | None, out: Path) -> bool:
    """Tokens/s and CPU per token against concurrency, one line per gateway."""
    if not relay or not relay.get("gateways"):
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (speed, cpu) = pyplot.subplots(1, 2, figsize=(11, 4.2))
    for index, (name, gateway) in enumerate(relay["gateways"].items()):
        rows = sorted(gateway.get("rows", []), key=lambda r: r["concurrency"])
        if not rows:
            continue
        levels = [r["concurrency"] for r in rows]
        style = {"marker": "o", "label": name, "color": f"C{index}"}
        speed.plot(levels, [r["tokens_per_second"] for r in rows], **style)
        if rows[0].get("cpu_us_per_token") is not None:
            cpu.plot(levels, [r["cpu_us_per_token"] for r in rows], **style)
    for axes, title in ((speed, "tokens/s relayed"), (cpu, "gateway CPU µs per token")):
        axes.set_xscale("log")
        axes.set_xlabel("concurrent streams")
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
    cpu.set_yscale("log")
    speed.legend(fontsize=8)
    figure.suptitle("Relay, fast upstream, 200 tokens per stream, gateway on one core")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    pyplot.close(figure)
    return True


# --- 3 and 4: latency, concurrency --------------------------------------------------------


def goal_latency(latency: dict[str, Any] | None) -> str:
    text = "## 3. Latency\n\nTTFT and inter-token delay through the gateway minus direct to the "
    text += "paced upstream (`paced-10`), interleaved batches in one run (`bench/latency.py`).\n\n"
    if not latency:
        return text + NOT_RUN + "\n"
    one = latency["one_stream"]["added"].get("llmrouter", {})
    hundred = latency["hundred_streams"]["added"].get("llmrouter", {})
    rows = [
        goal_row(
            "added TTFT p50, 1 stream", one.get("ttft_p50_ms"), ADDED_TTFT_P50_MS, " ms", True
        ),
        goal_row(
            "added TTFT p99, 100 streams",
            hundred.get("ttft_p99_ms"),
            ADDED_TTFT_P99_MS,
            " ms",
            True,
        ),
        [
            "added inter-token delay p50, 100 streams",
            fmt(hundred.get("delay_p50_ms"), 2) + " ms",
            "reported",
            "—",
            "—",
        ],
        [
            "added inter-token delay p99, 100 streams",
            fmt(hundred.get("delay_p99_ms"), 2) + " ms",
            "reported",
            "—",
            "—",
        ],
    ]
    raw = []
    for label in ("one_stream", "hundred_streams"):
        phase = latency[label]
        for name, row in phase["gateways"].items():
            extra = phase["added"].get(name, {})
            raw.append(
                [
                    label.replace("_", " "),
                    name,
                    fmt(row["ttft_p50_ms"], 2),
                    fmt(row["ttft_p99_ms"], 2),
                    fmt(row.get("delay_p50_ms"), 2),
                    fmt(row.get("delay_p99_ms"), 2),
                    fmt(extra.get("ttft_p50_ms"), 2),
                    fmt(extra.get("ttft_p99_ms"), 2),
                    fmt(extra.get("delay_p99_ms"), 2),
                    str(row["errors"]),
                    fmt(row.get("gateway_cpu_us_per_event")),
                ]
            )
    head = [
        "phase",
        "gateway",
        "TTFT p50",
        "TTFT p99",
        "delay p50",
        "delay p99",
        "added TTFT p50",
        "added TTFT p99",
        "added delay p99",
        "errors",
        "gateway CPU µs/event",
    ]
    client = latency.get("client", "?")
    return (
        text + table(GOAL_HEAD, rows) + f"\nAll of it in ms (load client: {client}; "
        "delay = a gap between tokens minus the 10 ms pace; `bare` is a grpc.aio server "
        "pacing its own tokens, the Python gRPC stack alone):\n\n" + table(head, raw)
    )


def goal_concurrency(concurrency: dict[str, Any] | None) -> str:
    text = "## 4. Concurrency\n\nStreams at 10 tokens/s each (`paced-100`, 100 tokens), all open "
    text += "together; a level passes with every stream complete and p99 added inter-token delay "
    text += f"≤ {fmt(DELAY_P99_MS, 0)} ms (`bench/concurrency.py`).\n\n"
    if not concurrency:
        return text + NOT_RUN + "\n"
    best = concurrency["highest_passed"]
    goal = concurrency.get("goal_streams", STREAMS)
    at_goal = next((r for r in concurrency["llmrouter"] if r["streams"] == goal), None)
    rows = [goal_row("highest level passed, streams", best, goal, "", False, 0)]
    if at_goal:
        rows.append(
            goal_row(
                f"p99 added inter-token delay at {goal}",
                at_goal["delay_p99_ms"],
                DELAY_P99_MS,
                " ms",
                True,
            )
        )
        rows.append(goal_row(f"errors at {goal}", at_goal["errors"], 0, "", True, 0))
    runs = []
    for row in [*concurrency["llmrouter"], *concurrency.get("controls", [])]:
        per = row.get("rss_per_stream_bytes")
        runs.append(
            [
                row["gateway"],
                str(row["streams"]),
                "pass" if row["passed"] else "FAIL",
                fmt(row["delay_p50_ms"]),
                fmt(row["delay_p99_ms"]),
                fmt(row["ttft_p99_ms"], 0),
                f"{row['errors']} {row['error_kinds'] or ''}".strip(),
                fmt(per / 1024 if per is not None else None),
                fmt(row.get("server_cpu_fraction"), 2),
                " / ".join(fmt(b, 2) for b in row.get("core_busy", [])),
            ]
        )
    head = [
        "gateway",
        "streams",
        "",
        "delay p50 ms",
        "delay p99 ms",
        "TTFT p99 ms",
        "errors",
        "RSS KiB/stream",
        "server CPU (cores)",
        "core 0 / core 1 busy",
    ]
    return (
        text + table(GOAL_HEAD, rows) + "\nEvery run (`direct`: the upstream alone, what the "
        "load core can do; `bare`: a grpc.aio server pacing its own tokens, what the Python "
        "gRPC stack can do on one core):\n\n" + table(head, runs)
    )


# --- 5 to 8: stalled streams, fairness, retention, embedded -------------------------------


def _find(data: Any, test: Callable[[str], bool]) -> list[tuple[str, Any]]:
    """Every (key path, value) under ``data`` whose last key passes ``test``."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            if test(str(key)) and isinstance(value, int | float):
                found.append((str(key), value))
            found += [(f"{key}.{k}", v) for k, v in _find(value, test)]
    return found


def goal_stalled(stalled: dict[str, Any] | None) -> str:
    text = "## 5. Memory per stalled stream\n\nServer RSS per stalled stream "
    text += "(`bench/stalled_streams.py`; goal ≤ 64 KB = 62.5 KiB), while flowing streams keep "
    text += "full speed.\n\n"
    if not stalled:
        return text + NOT_RUN + "\n"
    bound = stalled.get("goal_bytes", STALLED_BYTES) / 1024
    streams = stalled.get("streams", 200)
    rows = [
        goal_row(f"{name} ({streams} streams), KiB per stream", row["kib_per_stream"], bound,
                 " KiB", True)
        for name, row in (stalled.get("stalled") or {}).items()
        if isinstance(row, dict) and "kib_per_stream" in row
    ]  # fmt: skip
    if not rows:  # the older format: {scenario: [idle RSS, stalled RSS]}
        for name, pair in stalled.items():
            if isinstance(pair, list) and len(pair) == 2:
                per = (pair[1] - pair[0]) / streams / 1024
                rows.append(goal_row(f"{name} (of {streams})", per, bound, " KiB", True))
    if not rows:
        return text + _raw(stalled)
    flowing = stalled.get("flowing") or {}
    speed = "".join(f"\n- {name}: {fmt(rate, 0)} tokens/s" for name, rate in flowing.items()
                    if isinstance(rate, int | float))  # fmt: skip
    if speed:
        speed = "\nA flowing stream through the same server, by receive buffer:\n" + speed + "\n"
    return text + table(GOAL_HEAD, rows) + speed


def goal_fairness(fairness: dict[str, Any] | None) -> str:
    text = "## 6. Fairness under stalled readers\n\nA well-behaved caller's time to first token "
    text += "with 200 stalled readers present over its time without them (`bench/fairness.py`).\n\n"
    if not fairness:
        return text + NOT_RUN + "\n"
    ratios = _find(fairness, lambda k: "ratio" in k)
    rows = [
        goal_row(
            path.replace("_", " "), value, fairness.get("goal_ratio", FAIRNESS_RATIO), "x", True
        )
        for path, value in ratios
    ]
    return text + (table(GOAL_HEAD, rows) if rows else "") + _raw(fairness)


def _raw(data: Any) -> str:
    """The numbers of a results file whose shape this report does not know."""
    numbers = _find(data, lambda _: True)[:30]
    rows = [[path, fmt(value, 3)] for path, value in numbers]
    return "\nIts numbers:\n\n" + table(["key", "value"], rows) if rows else ""


def goal_retention(retention: dict[str, Any] | None) -> str:
    text = "## 7. Retention\n\nStart/cancel cycles against `llmrouter serve` with default "
    text += "retention, retention off and a small `retain_total_bytes` (`bench/retention.py`). "
    text += "Cost is independent of retention when the last thousand's server CPU per cycle is "
    text += f"within {RETENTION_COST_RATIO}x the first's (a bound for noise; the issue sets none); "
    text += "retained memory is how much more a configuration's RSS grew from idle than the "
    text += "retention-off server's did over as many cycles, against its `retain_total_bytes`.\n\n"
    if not retention:
        return text + NOT_RUN + "\n"
    configs = retention["configs"]
    baseline = configs.get("off", {})
    off = {
        row["cycles"]: row["rss_bytes"] - baseline["rss_idle_bytes"]
        for row in baseline.get("rows", [])
    }
    goals, detail = [], []
    for name, config in configs.items():
        rows = config["rows"]
        first, last = rows[0]["server_cpu_ms_per_cycle"], rows[-1]["server_cpu_ms_per_cycle"]
        goals.append(
            goal_row(
                f"{name}: CPU/cycle, thousand {len(rows)} ÷ first",
                last / first,
                RETENTION_COST_RATIO,
                "x",
                True,
            )
        )
        budget = config.get("retain_total_bytes")
        if budget and rows[-1]["cycles"] in off:
            grown = rows[-1]["rss_bytes"] - config["rss_idle_bytes"]
            retained = grown - off[rows[-1]["cycles"]]
            goals.append(
                goal_row(
                    f"{name}: retained RSS after {rows[-1]['cycles']} cycles, MiB",
                    retained / 2**20,
                    budget / 2**20,
                    " MiB",
                    True,
                )
            )
        detail.append(
            [
                name,
                json.dumps(config["streams"]) if config["streams"] else "defaults",
                " / ".join(fmt(r["seconds_per_thousand"], 2) for r in rows),
                " / ".join(fmt(r["server_cpu_ms_per_cycle"], 2) for r in rows),
                " / ".join(fmt(r["rss_bytes"] / 2**20, 0) for r in rows),
                str(rows[-1]["errors"]),
            ]
        )
    head = [
        "config",
        "streams",
        "s per thousand",
        "server CPU ms/cycle",
        "RSS MiB after each",
        "errors",
    ]
    return (
        text + table(GOAL_HEAD, goals) + f"\nEach thousand ({retention['op']} cycles, "
        f"{retention['concurrency']} clients):\n\n" + table(head, detail)
    )


def goal_embedded(embedded: dict[str, Any] | None) -> str:
    text = "## 8. Embedded model\n\nTokens/s through the router over the bare llama-cpp-python "
    text += "loop, interleaved runs, median (`bench/embedded.py`).\n\n"
    if not embedded:
        return text + NOT_RUN + "\n"
    ratio = embedded.get("ratio_of_medians")
    if ratio is None and "median" in embedded:  # the older format
        medians = embedded["median"]
        ratio = medians["router"] / medians["bare generate"]
    rows = [
        goal_row(
            "router ÷ bare tokens/s (median)",
            ratio,
            embedded.get("goal", EMBEDDED_RATIO),
            "",
            False,
        )
    ]
    if "text_identical" in embedded:
        rows.append(
            [
                "text identical in every run",
                str(embedded["text_identical"]),
                "True",
                "—",
                verdict(bool(embedded["text_identical"])),
            ]
        )
    pairs = len(embedded.get("pairs", [])) or len(embedded.get("runs", {}).get("router", []))
    return text + table(GOAL_HEAD, rows) + f"\n{pairs} runs of each.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--plot", type=Path, default=BENCH / "relay.png")
    args = parser.parse_args()
    results = Results(args.results)
    plotted = plot(results.get("relay"), args.plot)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        "# Benchmarks\n\nWritten by `bench/report.py` from `bench/results/*.json` "
        f"({when}); `make bench` runs them all and rewrites this file. Every number is from one "
        "run on the machine below, compared side by side in that run.\n",
        machine(results),
        commands(results),
        goal_cpu(results.get("relay")) + results.caveat("relay"),
        goal_throughput(results.get("relay")),
        goal_latency(results.get("latency")) + results.caveat("latency"),
        goal_concurrency(results.get("concurrency")) + results.caveat("concurrency"),
        goal_stalled(results.get("stalled_streams")) + results.caveat("stalled_streams"),
        goal_fairness(results.get("fairness")) + results.caveat("fairness"),
        goal_retention(results.get("retention")) + results.caveat("retention"),
        goal_embedded(results.get("embedded")) + results.caveat("embedded"),
    ]
    text = "\n".join(sections)
    if not plotted:
        text = text.replace("\n![relay](bench/relay.png)\n", "\n")
    args.out.write_text(text)
    print(f"wrote {args.out.name}" + (f" and {args.plot.name}" if plotted else ""))


if __name__ == "__main__":
    main()
