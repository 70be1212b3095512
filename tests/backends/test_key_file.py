"""Provider API keys read from files (``api_key_file``, a mounted Secret).

The router runs in-process with backends built from the configuration, in
front of a real loopback HTTP upstream that records the headers it receives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from llmrouter_server.config import Config
from llmrouter_server.errors import ConfigError
from tests.helpers import generate, loopback_config, serving, start, text
from tests.routing.faults import FaultUpstream

pytestmark = pytest.mark.timeout(10)

ENV = "TEST_KEY_FILE_ENV_KEY"
"""The variable ``api_key_env`` names; set, to show that the file wins over it."""


@pytest.fixture
async def upstream(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FaultUpstream]:
    monkeypatch.setenv(ENV, "sk-from-the-environment")
    upstream = FaultUpstream(tokens=3)
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.stop()


def _config(kind: str, base_url: str, key_file: Path) -> Config:
    backend: dict[str, Any] = {
        "kind": kind,
        "base_url": base_url,
        "api_key_env": ENV,
        "api_key_file": key_file,
    }
    return loopback_config(
        backends={"up": backend},
        routes={"up-model": {"targets": [{"backend": "up", "model": "m"}]}},
        default_route="up-model",
    )


@pytest.mark.parametrize(
    ("kind", "header", "sent"),
    [
        ("openai", "authorization", "Bearer sk-from-the-file"),
        ("anthropic", "x-api-key", "sk-from-the-file"),
    ],
)
async def test_the_key_in_the_file_is_sent_without_its_line_break(
    upstream: FaultUpstream, tmp_path: Path, kind: str, header: str, sent: str
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("sk-from-the-file\n")

    async with serving(_config(kind, upstream.base_url, key_file)) as served:
        events = await generate(served.stub, start())

    assert text(events) == " t0 t1 t2"
    assert [request.headers[header] for request in upstream.requests] == [sent]


async def _start_error(config: Config) -> str:
    with pytest.raises(ConfigError) as raised:
        async with serving(config):
            pass
    return str(raised.value)


async def test_a_missing_key_file_stops_start_up_naming_the_key(
    upstream: FaultUpstream, tmp_path: Path
) -> None:
    key_file = tmp_path / "absent"

    message = await _start_error(_config("openai", upstream.base_url, key_file))

    assert message == f"backends.up.api_key_file: cannot read {key_file}: No such file or directory"


async def test_a_directory_as_key_file_stops_start_up(
    upstream: FaultUpstream, tmp_path: Path
) -> None:
    message = await _start_error(_config("anthropic", upstream.base_url, tmp_path))

    assert message == f"backends.up.api_key_file: cannot read {tmp_path}: Is a directory"


@pytest.mark.parametrize(
    ("content", "problem"),
    [("\n", "is empty"), ("sk-one\nsk-two\n", "holds more than one line")],
)
async def test_a_key_file_without_one_key_stops_start_up_without_showing_it(
    upstream: FaultUpstream, tmp_path: Path, content: str, problem: str
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(content)

    message = await _start_error(_config("openai", upstream.base_url, key_file))

    assert message == f"backends.up.api_key_file: {key_file} {problem}"
