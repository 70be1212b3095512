"""Fixtures: one ``llmrouter serve`` process for the client tests, and a client per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from llmrouter import Client

from tests.serve_process import llmrouter_serve


@pytest.fixture(scope="package")
def address() -> Iterator[str]:
    """The address of ``llmrouter serve`` on a free loopback port.

    Its flow window is small: a generation whose caller holds back its credits
    stops a few events ahead and stays RUNNING for as long as a test needs it to.
    """
    with llmrouter_serve(LLMROUTER_STREAMS__WINDOW_EVENTS="4") as address:
        yield address


@pytest.fixture
async def client(address: str) -> AsyncIterator[Client]:
    """A client of that server."""
    async with Client(address) as client:
        yield client
