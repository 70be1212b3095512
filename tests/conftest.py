"""Fixtures: one server on the embedded model for the session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.helpers import Served, loopback_config, serving


@pytest.fixture(scope="session")
async def served() -> AsyncIterator[Served]:
    """The default configuration (embedded SmolLM2, one instance) on loopback."""
    async with serving(
        loopback_config(limits={"max_tokens_cap": 256, "default_max_tokens": 16})
    ) as served:
        yield served
