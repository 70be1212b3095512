"""API keys: hashed lookup, the key file, its re-reading and its errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from llmrouter_server.auth.keys import Authenticator, fingerprint
from llmrouter_server.auth.principal import Principal
from llmrouter_server.config import AuthConfig, IdentityLimits, Role
from llmrouter_server.errors import ConfigError, Unauthenticated

pytestmark = pytest.mark.timeout(10)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def entry(key_id: str, key: str, tenant: str = "t") -> str:
    return f"- {{id: {key_id}, sha256: {fingerprint(key)}, tenant: {tenant}}}\n"


def test_a_key_is_found_by_its_sha256_and_nothing_else() -> None:
    assert fingerprint("k") == hashlib.sha256(b"k").hexdigest()
    config = AuthConfig(
        api_keys=[{"id": "ci", "sha256": fingerprint("k").upper(), "tenant": "t", "role": "admin"}]
    )
    authenticator = Authenticator(config)

    assert authenticator.by_key("k") == Principal("ci", "t", Role.ADMIN, IdentityLimits())
    with pytest.raises(Unauthenticated) as caught:
        authenticator.by_key(fingerprint("k"))
    assert caught.value.message == "the API key is not valid for this server"


def test_the_same_key_twice_stops_start_up() -> None:
    twice = [
        {"id": "one", "sha256": fingerprint("k"), "tenant": "t"},
        {"id": "two", "sha256": fingerprint("k"), "tenant": "u"},
    ]
    with pytest.raises(ConfigError) as caught:
        Authenticator(AuthConfig(api_keys=twice))
    assert str(caught.value) == "auth.api_keys: key 'two' appears twice (same id or same hash)"


def test_an_unreadable_or_malformed_key_file_stops_start_up(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as caught:
        Authenticator(AuthConfig(api_keys_file=missing))
    assert str(caught.value) == (
        f"auth.api_keys_file: cannot read {missing}: No such file or directory"
    )

    bad = tmp_path / "bad.yaml"
    bad.write_text("- {id: x, sha256: nothex, tenant: t}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Authenticator(AuthConfig(api_keys_file=bad))
    assert str(caught.value).startswith(f"auth.api_keys_file: {bad}: entry 0.sha256: ")


def test_a_broken_rewrite_keeps_the_keys_read_before(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(entry("old", "old-key"), encoding="utf-8")
    clock = Clock()
    authenticator = Authenticator(AuthConfig(api_keys_file=path), clock=clock)

    path.write_text("[not: valid", encoding="utf-8")
    clock.now += 2
    assert authenticator.by_key("old-key").identity == "old"

    path.write_text(entry("new", "new-key") + "# rotated\n", encoding="utf-8")
    clock.now += 0.5  # checked at most once a second
    with pytest.raises(Unauthenticated):
        authenticator.by_key("new-key")
    clock.now += 1
    assert authenticator.by_key("new-key").identity == "new"
    with pytest.raises(Unauthenticated):
        authenticator.by_key("old-key")


def test_an_auth_section_without_identities_is_refused() -> None:
    with pytest.raises(ValueError, match="give api_keys, api_keys_file or client_certificates"):
        AuthConfig()
