"""End to end: ``llmrouter serve`` as a subprocess, driven by grpcurl and the CLI.

grpcurl is the pinned binary ``make tools`` installs; it finds the contract
through server reflection alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve_process import LLMROUTER, llmrouter_serve

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
GRPCURL = shutil.which("grpcurl", path=str(ROOT / ".tools" / "bin")) or "grpcurl"


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """``llmrouter serve`` on a loopback port, as ``make serve`` runs it."""
    with llmrouter_serve() as address:
        yield address


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GRPCURL, *args], capture_output=True, text=True, check=False, timeout=60)


def test_grpcurl_lists_services_through_reflection(address: str) -> None:
    result = grpcurl("-plaintext", address, "list")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "llmrouter.v1.RouterService",
    ]


def test_grpcurl_describes_the_service(address: str) -> None:
    result = grpcurl("-plaintext", address, "describe", "llmrouter.v1.RouterService")

    assert result.returncode == 0, result.stderr
    for rpc, request, response in (
        (
            "Generate",
            "stream .llmrouter.v1.GenerateRequest",
            "stream .llmrouter.v1.GenerateResponse",
        ),
        ("Control", "stream .llmrouter.v1.ControlRequest", "stream .llmrouter.v1.ControlResponse"),
        ("ListModels", ".llmrouter.v1.ListModelsRequest", ".llmrouter.v1.ListModelsResponse"),
    ):
        assert f"rpc {rpc} ( {request} ) returns ( {response} );" in result.stdout


def test_grpcurl_generate_streams_events(address: str) -> None:
    request = {"start": {"prompt": "Say hello.", "sampling": {"maxTokens": 5, "temperature": 0}}}

    result = grpcurl(
        "-plaintext", "-d", json.dumps(request), address, "llmrouter.v1.RouterService/Generate"
    )

    assert result.returncode == 0, result.stderr
    events = [message["event"] for message in _json_stream(result.stdout)]
    assert "started" in events[0]
    assert all("chunk" in event for event in events[1:-1])
    assert events[-1]["completed"]["finishReason"] == "FINISH_REASON_LENGTH"
    assert events[-1]["completed"]["usage"]["completionTokens"] == 5
    assert [int(event.get("offset", 0)) for event in events] == list(range(len(events)))


def test_grpcurl_health_check(address: str) -> None:
    result = grpcurl(
        "-plaintext",
        "-d",
        '{"service": "llmrouter.v1.RouterService"}',
        address,
        "grpc.health.v1.Health/Check",
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "SERVING"}


def test_grpcurl_bad_input_shows_the_status(address: str) -> None:
    request = {"start": {"prompt": "hi", "sampling": {"maxTokens": 0}}}

    result = grpcurl(
        "-plaintext", "-d", json.dumps(request), address, "llmrouter.v1.RouterService/Generate"
    )

    assert result.returncode != 0
    assert "Code: InvalidArgument" in result.stderr
    assert "start.sampling.max_tokens: must be positive" in result.stderr


def test_cli_generate_prints_real_text_and_a_summary(address: str) -> None:
    command = ["generate", "Say hello.", "--max-tokens", "8", "--temperature", "0"]
    result = subprocess.run(
        [*LLMROUTER, *command, "--address", address],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "\033" not in result.stdout  # no terminal control codes when piped
    assert "8 tokens" in result.stderr
    assert "embedded/smollm2-135m-instruct" in result.stderr


def test_cli_models_lists_the_default_route(address: str) -> None:
    result = subprocess.run(
        [*LLMROUTER, "models", "--address", address], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "smollm2-135m-instruct (default)"


def test_cli_reports_errors_with_the_status(address: str) -> None:
    result = subprocess.run(
        [*LLMROUTER, "generate", "hi", "--model", "nope", "--address", address],
        capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("llmrouter: NOT_FOUND: start.model: unknown model 'nope'")
    assert line.endswith("; 'llmrouter models' lists the routes and models")


def test_serve_with_a_bad_config_fails_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("server: {port: high}\n")

    result = subprocess.run(
        [*LLMROUTER, "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == 2
    assert "server.port: Input should be a valid integer" in result.stderr


def _json_stream(output: str) -> list[dict[str, object]]:
    decoder = json.JSONDecoder()
    messages, index = [], 0
    output = output.strip()
    while index < len(output):
        message, index = decoder.raw_decode(output, index)
        messages.append(message)
        while index < len(output) and output[index].isspace():
            index += 1
    return messages
