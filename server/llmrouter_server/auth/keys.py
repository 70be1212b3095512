"""Turns credentials into principals: API keys and client certificate names.

Keys are stored as their SHA-256 (``auth.api_keys``, or a YAML list of the
same entries in ``auth.api_keys_file``, a mounted Secret). A presented key is
hashed and looked up; the key itself is never kept or logged. The file is
re-read when its modification time or size changes, at most once a second,
so a rotated Secret takes effect without a restart; a file that no longer
parses keeps the keys read before (and says so in the log once).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from llmrouter_server.auth.principal import Principal
from llmrouter_server.config import APIKeyConfig, AuthConfig
from llmrouter_server.errors import ConfigError, Unauthenticated

logger = logging.getLogger(__name__)

_KEYS = TypeAdapter(list[APIKeyConfig])

_RECHECK_SECONDS = 1.0
"""How often the key file's modification time is looked at, at most."""


_BEARER = "bearer "
"""The authorization scheme, compared without case."""


def fingerprint(key: str) -> str:
    """The hex SHA-256 of a key, as ``auth.api_keys[].sha256`` stores it."""
    return hashlib.sha256(key.encode()).hexdigest()


class Authenticator:
    """Principals by API key and by client certificate common name."""

    def __init__(self, config: AuthConfig, clock: Callable[[], float] = time.monotonic) -> None:
        """Reads the keys.

        Raises:
            ConfigError: ``auth.api_keys_file`` is unreadable or not a list of keys,
                or a key id or hash appears twice.
        """
        self._config = config
        self._clock = clock
        self._certificates = {
            entry.common_name: Principal(
                entry.common_name,
                entry.tenant,
                entry.role,
                entry.limits,
                f"auth.client_certificates[{entry.common_name}]",
            )
            for entry in config.client_certificates
        }
        self._file_stamp: tuple[int, int] | None = None
        self._checked_at = clock()
        self._keys = _index(config.api_keys, "auth.api_keys")
        if config.api_keys_file is not None:
            self._file_stamp = _stamp(config.api_keys_file)
            self._keys = self._with_file(config.api_keys_file)

    def by_authorization(self, value: str, carrier: str) -> Principal:
        """The principal of ``Bearer <key>`` (the scheme in any case), as ``carrier``
        (the gRPC metadata, the gateway's header or frame) brought it.

        Raises:
            Unauthenticated: Not ``Bearer <key>``, or a key the server does not know.
        """
        if not value.lower().startswith(_BEARER):
            raise Unauthenticated(f"the {carrier} must be 'Bearer <key>'")
        return self.by_key(value[len(_BEARER) :].strip())

    def by_key(self, key: str) -> Principal:
        """The principal of a bearer key.

        Raises:
            Unauthenticated: The key is not one the server knows.
        """
        self._maybe_reload()
        principal = self._keys.get(fingerprint(key))
        if principal is None:
            raise Unauthenticated("the API key is not valid for this server")
        return principal

    def by_certificate(self, common_name: str) -> Principal | None:
        """The principal configured for a client certificate's common name, if any."""
        return self._certificates.get(common_name)

    def _with_file(self, path: Path) -> dict[str, Principal]:
        entries = [*self._config.api_keys, *_read(path)]
        return _index(entries, f"auth.api_keys_file ({path})")

    def _maybe_reload(self) -> None:
        path = self._config.api_keys_file
        now = self._clock()
        if path is None or now - self._checked_at < _RECHECK_SECONDS:
            return
        self._checked_at = now
        stamp = _stamp(path)
        if stamp == self._file_stamp:
            return
        self._file_stamp = stamp  # a broken file is reported once, not on every call
        try:
            self._keys = self._with_file(path)
        except ConfigError as error:
            logger.warning("%s; keeping the keys read before", error)
            return
        logger.info("re-read the API keys in %s: %d keys", path, len(self._keys))


def _stamp(path: Path) -> tuple[int, int] | None:
    """The file's modification time and size; None while it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


def _read(path: Path) -> list[APIKeyConfig]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"auth.api_keys_file: cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError:
        raise ConfigError(f"auth.api_keys_file: {path} is not valid YAML") from None
    try:
        return _KEYS.validate_python(data or [])
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ConfigError(f"auth.api_keys_file: {path}: entry {where}: {problem['msg']}") from None


def _index(entries: Iterable[APIKeyConfig], where: str) -> dict[str, Principal]:
    keys: dict[str, Principal] = {}
    ids: set[str] = set()
    for entry in entries:
        digest = entry.sha256.lower()
        if digest in keys or entry.id in ids:
            raise ConfigError(f"{where}: key {entry.id!r} appears twice (same id or same hash)")
        ids.add(entry.id)
        keys[digest] = Principal(
            entry.id, entry.tenant, entry.role, entry.limits, f"auth.api_keys[{entry.id}]"
        )
    return keys
