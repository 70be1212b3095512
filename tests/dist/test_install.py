"""The ``make dist`` artifacts, each installed in a clean project outside the repository.

Each test installs one artifact the way its client's README says, builds a small program
on the client's public API (``programs/``) and runs it against ``llmrouter serve`` with
the embedded model. The program prints one line per event; it must print exactly what
the same Python program prints through the checkout's own client: the greedy text in
chunks, then a completed event. The wheel is built from the sdist, so it covers both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from llmrouter.v1 import events_pb2 as ev_pb

from tests.serve_process import llmrouter_serve

pytestmark = [pytest.mark.dist, pytest.mark.timeout(150)]

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
PROGRAMS = Path(__file__).with_name("programs")
PROMPT = "Say hello in five words."
MAX_TOKENS = 12

Event = tuple[str, object]

# The environment of a user's shell: not this test's virtual environment, and no
# toolchain download (Go's cache, module cache and npm's cache are used as they are).
TEST_ONLY = {"VIRTUAL_ENV", "PYTHONPATH"}
USER_ENV = {
    **{name: value for name, value in os.environ.items() if name not in TEST_ONLY},
    "GOTOOLCHAIN": "local",
    "GOWORK": "off",
}

# What a Node-only consumer compiles with: no DOM lib, and the declarations of every
# package checked (skipLibCheck false), the setting that found Connect's HeadersInit.
TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "lib": ["ES2022"],
        "module": "NodeNext",
        "moduleResolution": "NodeNext",
        "types": ["node"],
        "strict": True,
        "skipLibCheck": False,
        "noEmitOnError": True,
    },
    "files": ["generate.ts"],
}


def artifact(pattern: str) -> Path:
    """The one file in dist/ that matches ``pattern``."""
    found = sorted(DIST.glob(pattern))
    assert len(found) == 1, f"want one dist/{pattern}, found {found}: run 'make dist' first"
    return found[0]


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is not on PATH"
    return path


def run(command: list[str], cwd: Path, env: Mapping[str, str] = USER_ENV) -> str:
    """Runs ``command`` in ``cwd``; returns its output, or fails the test with it."""
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def parse(output: str) -> list[Event]:
    """The events a program printed: kind and text, finish reason and tokens, or kind."""
    events: list[Event] = []
    for line in output.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "chunk":
            events.append((kind, json.loads(rest)))
        elif kind == "completed":
            reason, tokens = rest.split()
            events.append((kind, (int(reason), int(tokens))))
        else:
            events.append((kind, rest))
    return events


def arguments(address: str) -> list[str]:
    return [address, PROMPT, str(MAX_TOKENS)]


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """``llmrouter serve`` with the embedded model on a free loopback port."""
    with llmrouter_serve() as address:
        yield address


@pytest.fixture(scope="module")
def expected(address: str) -> list[Event]:
    """What the Python program prints through the checkout's client (this interpreter's).

    The server's first greedy generation of a prompt may end differently from the later
    ones, which reuse the prompt's cached model state; the reference is the second run.
    """
    command = [sys.executable, str(PROGRAMS / "generate.py"), *arguments(address)]
    run(command, cwd=ROOT)
    events = parse(run(command, cwd=ROOT))
    kinds = [kind for kind, _ in events]
    assert kinds == ["started", *["chunk"] * (len(kinds) - 2), "completed"], events
    assert "".join(str(text) for kind, text in events if kind == "chunk").strip()
    reason, tokens = events[-1][1]
    assert reason in {ev_pb.FINISH_REASON_STOP, ev_pb.FINISH_REASON_LENGTH}
    assert 0 < tokens <= MAX_TOKENS
    return events


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A temporary folder, checked to be outside the repository."""
    assert not tmp_path.is_relative_to(ROOT)
    return tmp_path


def test_python_wheel_in_a_fresh_venv(outside: Path, address: str, expected: list[Event]) -> None:
    wheel = artifact("llmrouter_client-*-py3-none-any.whl")
    venv = outside / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=outside)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    run([*pip, str(wheel)], cwd=outside)
    where = run([python, "-c", "import llmrouter; print(llmrouter.__file__)"], cwd=outside)
    assert Path(where.strip()).is_relative_to(venv)

    program = shutil.copy(PROGRAMS / "generate.py", outside)
    assert parse(run([python, program, *arguments(address)], cwd=outside)) == expected


def test_npm_tarball_compiles_without_dom_or_skip_lib_check(
    outside: Path, address: str, expected: list[Event]
) -> None:
    tarball = artifact("llmrouter-client-*.tgz")
    npm = tool("npm")
    run([npm, "init", "--yes"], cwd=outside)
    run([npm, "pkg", "set", "type=module"], cwd=outside)
    # The compiler and Node's types at the versions the client itself is built with.
    pinned = json.loads((ROOT / "clients" / "typescript" / "package.json").read_text())
    versions = pinned["devDependencies"]
    compiler = [f"{name}@{versions[name]}" for name in ("typescript", "@types/node")]
    install = [npm, "install", "--no-audit", "--no-fund", "--prefer-offline"]
    run([*install, str(tarball), *compiler], cwd=outside)
    (outside / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    shutil.copy(PROGRAMS / "generate.ts", outside)
    run([str(outside / "node_modules" / ".bin" / "tsc"), "-p", "."], cwd=outside)

    output = run([tool("node"), "generate.js", *arguments(address)], cwd=outside)
    assert parse(output) == expected


def test_go_module_tarball_through_a_replace_directive(
    outside: Path, address: str, expected: list[Event]
) -> None:
    with tarfile.open(artifact("llmrouter-go-*.tar.gz")) as archive:
        archive.extractall(outside, filter="data")
    (module,) = outside.glob("llmrouter-go-*")
    path = module_path(module / "go.mod")
    project = outside / "try"
    project.mkdir()
    go = tool("go")
    run([go, "mod", "init", "example.com/try"], cwd=project)
    run([go, "mod", "edit", f"-replace={path}={module}"], cwd=project)
    # Any version will do: the replace directive supplies the module's files.
    run([go, "get", f"{path}@v0.0.0"], cwd=project)
    shutil.copy(PROGRAMS / "main.go", project)
    run([go, "mod", "tidy"], cwd=project)
    run([go, "build", "-o", "try", "."], cwd=project)

    output = run([str(project / "try"), *arguments(address)], cwd=project)
    assert parse(output) == expected


def module_path(go_mod: Path) -> str:
    """The path a go.mod file declares on its ``module`` line."""
    for line in go_mod.read_text().splitlines():
        if line.startswith("module "):
            return line.removeprefix("module ").strip()
    raise AssertionError(f"{go_mod} has no module line")
