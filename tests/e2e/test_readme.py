"""End to end: the README's recipes, from "Try it" through "Flow control", run as shown.

Every ``$ grpcurl …`` and ``$ llmrouter …`` line runs in README order through
``bash``, with the README's own ``export PATH=…`` line run first from the
checkout, against ``llmrouter serve`` on a free loopback port with the default
configuration (``localhost:50051`` in the README), and, for the commands on the
README's YAML configuration's port, a second server with that file. What each
prints is compared with the output shown, by shape (see ``tests/e2e/readme.py``).

Recipes meant for another terminal are driven as a user would: a ``-d @``
command gets its request lines on stdin and keeps running, stdin open, once it
has printed what the README shows before its first ``…`` line; the next recipes
run meanwhile; at the end its stdin is closed and its whole output compared. A
command whose output ends with ``^C`` gets SIGINT once it has printed what the
README shows.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
import yaml

from tests.e2e.readme import (
    ELLIPSIS,
    Recipe,
    complete_messages,
    console_blocks,
    expected_messages,
    fenced,
    glob,
    grpcurl_error,
    is_ellipsis,
    json_messages,
    kind,
    section,
    shape,
    summary_pattern,
)
from tests.serve_process import llmrouter_serve

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PATH_LINE = 'export PATH="$PWD/.venv/bin:$PWD/.tools/bin:$PATH"'
DEFAULT_ADDRESS = "localhost:50051"
COMMAND_TIMEOUT = 30.0
"""Seconds a command may take; a held one, to print what the README shows, then to end."""


@dataclass(frozen=True)
class Result:
    """How a command ended and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def test_the_readme_has_the_recipes() -> None:
    readme = README.read_text()
    blocks = console_blocks(readme)
    recipes = [recipe for block in blocks for recipe in block.recipes]
    _, lines = section(readme)
    commands = [line for line in lines if re.match(r"\$ (grpcurl|llmrouter) ", line)]

    assert recipes[0].command == PATH_LINE
    assert [r.command for r in recipes].count(PATH_LINE) == 1
    assert len(recipes) - 1 == len(commands) >= 25
    assert all(recipe.output or recipe.command == PATH_LINE for recipe in recipes)
    assert [block.line for block in blocks if block.skipped] == []


def test_every_recipe_prints_what_the_readme_shows(tmp_path: Path) -> None:
    readme = README.read_text()
    blocks = console_blocks(readme)
    recipes = [recipe for block in blocks if block.skipped is None for recipe in block.recipes]
    assert (ROOT / ".tools" / "bin" / "grpcurl").exists(), "run `make tools` first"

    with servers(readme, tmp_path) as addresses, ExitStack() as cleanup:
        session = Session(addresses, cleanup)
        for recipe in recipes:
            session.run(recipe)
        session.finish()

    if session.problems:
        pytest.fail("\n\n".join(session.problems), pytrace=False)
    assert session.ran == len(recipes) == sum(len(block.recipes) for block in blocks)


@contextmanager
def servers(readme: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The README's addresses mapped to servers: the default one, and one with its YAML."""
    [(_, lines, _)] = fenced(readme, "yaml")
    config = tmp_path / "resilient.yaml"
    config.write_text("\n".join(lines) + "\n")
    port = yaml.safe_load(config.read_text())["server"]["port"]
    with llmrouter_serve() as default, llmrouter_serve(LLMROUTER_CONFIG=str(config)) as other:
        yield {DEFAULT_ADDRESS: default, f"localhost:{port}": other}


@dataclass
class Session:
    """Runs recipes in order, as one user with two terminals would."""

    addresses: dict[str, str]
    cleanup: ExitStack
    ran: int = 0
    problems: list[str] = field(default_factory=list)
    held: list[tuple[Recipe, Background]] = field(default_factory=list)
    prelude: str | None = None

    def run(self, recipe: Recipe) -> None:
        """Runs one recipe; a mismatch is added to ``problems``."""
        self.ran += 1
        if recipe.command.startswith("export "):
            assert recipe.command == PATH_LINE, recipe
            self.prelude = recipe.command
            return
        if recipe.interrupted:
            background = self._start(recipe)
            background.wait_for(_shown_before_ellipsis(recipe))
            result = background.finish(signal.SIGINT)
            self.problems += check(recipe, result, -signal.SIGINT)
        elif recipe.stdin:
            background = self._start(recipe)
            background.wait_for(_shown_before_ellipsis(recipe))
            self.held.append((recipe, background))
        else:
            self.problems += check(recipe, self._run(recipe))

    def finish(self) -> None:
        """Closes the held commands' stdin and compares everything they printed."""
        for recipe, background in self.held:
            self.problems += check(recipe, background.finish())

    def _run(self, recipe: Recipe) -> Result:
        done = subprocess.run(
            ["bash", "-c", self._script(recipe)], cwd=ROOT, env=self._env(),
            capture_output=True, text=True, check=False, timeout=COMMAND_TIMEOUT,
        )  # fmt: skip
        return Result(done.returncode, done.stdout, done.stderr)

    def _start(self, recipe: Recipe) -> Background:
        background = Background(self._script(recipe), self._env(), recipe.stdin)
        self.cleanup.callback(background.close)
        return background

    def _script(self, recipe: Recipe) -> str:
        assert self.prelude, f"{recipe}: runs before the README's {PATH_LINE!r}"
        command = recipe.command
        for shown, actual in self.addresses.items():
            command = command.replace(shown, actual)
        assert "localhost:" not in command, f"{recipe}: an address with no server"
        return f"{self.prelude}\nexec {command}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PWD": str(ROOT),
            "LLMROUTER_ADDRESS": self.addresses[DEFAULT_ADDRESS],
        }


class Background:
    """A command running as in another terminal, its output collected as it comes."""

    def __init__(self, script: str, env: dict[str, str], stdin: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "-c", script], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=_drain, args=(self.process.stdout, self._out), daemon=True),
            threading.Thread(target=_drain, args=(self.process.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        assert self.process.stdin is not None
        self.process.stdin.write("".join(f"{line}\n" for line in stdin))
        self.process.stdin.flush()
        self._deadline = time.monotonic() + COMMAND_TIMEOUT

    def wait_for(self, messages: int) -> None:
        """Returns once the command printed that many JSON messages, or ended."""
        while complete_messages("".join(self._out)) < messages and self.process.poll() is None:
            assert time.monotonic() < self._deadline, f"only printed: {''.join(self._out)}"
            time.sleep(0.05)

    def finish(self, interrupt: signal.Signals | None = None) -> Result:
        """Interrupts the command or closes its stdin; returns once it ended."""
        if interrupt is not None:
            self.process.send_signal(interrupt)
        assert self.process.stdin is not None
        self.process.stdin.close()
        returncode = self.process.wait(COMMAND_TIMEOUT)
        for reader in self._readers:
            reader.join(COMMAND_TIMEOUT)
        return Result(returncode, "".join(self._out), "".join(self._err))

    def close(self) -> None:
        """Kills the command if it still runs, and closes its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(COMMAND_TIMEOUT)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _drain(stream: IO[str] | None, into: list[str]) -> None:
    assert stream is not None
    into.extend(iter(stream.readline, ""))


def _shown_before_ellipsis(recipe: Recipe) -> int:
    shown = list(itertools.takewhile(lambda line: not is_ellipsis(line), recipe.output))
    return len(json_messages("\n".join(shown)))


def check(recipe: Recipe, result: Result, returncode: int = 0) -> list[str]:
    """What differs between a command's result and the README; empty when nothing does."""
    program = shlex.split(recipe.command)[0]
    if program == "grpcurl":
        return _check_grpcurl(recipe, result, returncode)
    if program == "llmrouter":
        return _check_cli(recipe, result)
    return [f"{recipe}: runs neither grpcurl nor llmrouter"]


def _check_grpcurl(recipe: Recipe, result: Result, returncode: int) -> list[str]:
    shown = [line for line in recipe.output if not is_ellipsis(line)]
    if shown[:1] == ["ERROR:"]:
        return _check_grpcurl_error(recipe, result)
    problems = _status(recipe, result, returncode, stderr="")
    if shown[:1] == ["{"]:
        return problems + _check_json(recipe, result.stdout)
    pattern = [None if is_ellipsis(line) else line for line in recipe.output]
    if not glob(pattern, result.stdout.splitlines(), str.__eq__):
        problems.append(f"{recipe}: printed\n{result.stdout}")
    return problems


def _check_grpcurl_error(recipe: Recipe, result: Result) -> list[str]:
    expected = grpcurl_error("\n".join(recipe.output))
    code = grpc.StatusCode[re.sub(r"(?<!^)(?=[A-Z])", "_", expected[0]).upper()]
    problems = _status(recipe, result, 64 + code.value[0], stdout="")
    if grpcurl_error(result.stderr) != expected:
        problems.append(f"{recipe}: expected {expected}, got:\n{result.stderr}")
    return problems


def _check_json(recipe: Recipe, stdout: str) -> list[str]:
    try:
        actual = json_messages(stdout)
    except ValueError:
        return [f"{recipe}: not a stream of JSON messages:\n{stdout}"]
    expected = expected_messages(recipe.output)
    pattern = [None if message is None else shape(message) for message in expected]
    if glob(pattern, [shape(message) for message in actual], frozenset.__eq__):
        return []
    problems = [
        f"{recipe}: the messages differ from the README's",
        f"  README: {_runs(ELLIPSIS if m is None else kind(m) for m in expected)}",
        f"  actual: {_runs(kind(m) for m in actual)}",
    ]
    shapes = {shape(message) for message in actual}
    problems += [
        f"  {_closest(message, actual)}"
        for message in expected
        if message is not None and shape(message) not in shapes
    ]
    return ["\n".join(problems)]


def _check_cli(recipe: Recipe, result: Result) -> list[str]:
    if recipe.output[0].startswith("llmrouter: "):
        problems = _status(recipe, result, 1, stdout="")
        if result.stderr.splitlines() != list(recipe.output):
            problems.append(f"{recipe}: printed {result.stderr!r}")
        return problems
    if shlex.split(recipe.command)[1] != "generate":
        return _status(recipe, result, 0, stdout="\n".join(recipe.output) + "\n", stderr="")
    problems = _status(recipe, result, 0)
    summary = summary_pattern(recipe.output[-1])
    if len(recipe.output) < 2 or not summary.fullmatch(result.stderr.rstrip("\n")):
        problems.append(f"{recipe}: summary {result.stderr!r}, not like {recipe.output[-1]!r}")
    if not result.stdout.strip() or "\033" in result.stdout:
        problems.append(f"{recipe}: printed the text {result.stdout!r}")
    return problems


def _status(
    recipe: Recipe,
    result: Result,
    returncode: int,
    *,
    stdout: str | None = None,
    stderr: str | None = None,
) -> list[str]:
    """The exit status, and stdout or stderr where they must be exactly as given."""
    problems = []
    if result.returncode != returncode:
        problems.append(f"{recipe}: exit status {result.returncode}, not {returncode}")
    for name, expected, actual in (
        ("stdout", stdout, result.stdout),
        ("stderr", stderr, result.stderr),
    ):
        if expected is not None and actual != expected:
            problems.append(f"{recipe}: {name} {actual!r}, not {expected!r}")
    return problems


def _closest(message: Any, actual: list[Any]) -> str:
    wanted = shape(message)
    same_kind = [shape(m) for m in actual if kind(m) == kind(message)] or [frozenset()]
    near = min(same_kind, key=lambda other: len(wanted ^ other))
    return (
        f"{kind(message)}: only in the README {sorted(wanted - near)}, "
        f"only printed {sorted(near - wanted)}"
    )


def _runs(kinds: Iterator[str] | Sequence[str]) -> str:
    return ", ".join(
        f"{name} x{count}" if (count := len(list(group))) > 1 else name
        for name, group in itertools.groupby(kinds)
    )
