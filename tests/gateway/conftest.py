"""Fixtures of the gateway tests: a scripted server with the gateway on, for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.gateway.helpers import Client, gateway_config, socket
from tests.helpers import Served, serving
from tests.security.scripted import HeldBackend, backends


@pytest.fixture
def held() -> HeldBackend:
    """The ``held-model`` backend: its first word at once, the rest once released."""
    return HeldBackend()


@pytest.fixture
async def served(held: HeldBackend) -> AsyncIterator[Served]:
    """``fake-model`` and ``held-model`` over gRPC and the gateway."""
    async with serving(gateway_config(), backends(held)) as served:
        yield served


@pytest.fixture
async def client(served: Served) -> AsyncIterator[Client]:
    """A socket to ``served``."""
    async with socket(served) as client:
        yield client
