"""Fixtures of the TLS tests: fresh certificates on disk for each test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.helpers import PKI, make_pki


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    """Authorities, and the server's certificate, key and client CA in ``tmp_path``."""
    return make_pki(tmp_path)
