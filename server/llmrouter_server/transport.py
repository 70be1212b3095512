"""The gRPC port's transport: plaintext, TLS or mutual TLS, and certificate rotation.

``ServerTLS`` reads the ``tls`` files once at start (a missing, unreadable or
malformed file, or a key that does not match its certificate, stops start-up
with a ``ConfigError`` naming the key) and builds
``grpc.dynamic_ssl_server_credentials`` from them. gRPC core calls
``ServerTLS.fetch`` before every new TLS handshake; it hands back the files'
new contents when they changed since the last load (inode, size, modification
or change time) or after ``reload()`` (SIGHUP), and None otherwise. Only new
handshakes use what it returns: connections already open, and the streams on
them, keep the certificate they were set up with.

A file that is broken at rotation time never breaks the server: the warning is
logged once per broken state of the files and the port keeps serving the
certificate it had. Files caught mid-replacement (a certificate that changed
while it was read) are left for the next handshake, without a warning.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc

from llmrouter_server.config import Config, ServerConfig, TLSConfig
from llmrouter_server.errors import ConfigError

logger = logging.getLogger(__name__)

EXPOSED_WARNING = (
    "serving {host}:{port} without authentication: anyone who can reach this port "
    "can read and steer every generation (set auth, or tls.client_ca_file)"
)
"""Logged at start when a non-loopback port accepts every caller."""

_Stamp = tuple[tuple[int, int, int, int] | None, ...]
"""Per file: inode, size, modification and change time in ns (None: cannot stat)."""

_START_ATTEMPTS = 3
"""Reads at start-up before files that keep changing are an error."""


@dataclass(frozen=True, slots=True)
class _Material:
    """The PEM contents of the ``tls`` files."""

    cert: bytes
    key: bytes
    client_ca: bytes | None

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(self.key, self.cert)], self.client_ca)


class ServerTLS:
    """The port's TLS credentials, whose certificates follow the ``tls`` files.

    Attributes:
        credentials: What ``add_secure_port`` takes.
        mutual: True when every client must present a certificate that chains
            to ``tls.client_ca_file``.
    """

    def __init__(self, tls: TLSConfig) -> None:
        """Reads and checks the files and builds the credentials.

        Raises:
            ConfigError: A file is missing, unreadable or not PEM, or the key
                does not match the certificate; names the key at fault.
        """
        self._tls = tls
        self._lock = threading.Lock()
        self._loaded, material = _load_at_start(tls)
        self._failed: _Stamp | None = None
        self._reload_requested = False
        self.mutual = tls.client_ca_file is not None
        # grpc-stubs types the fetcher as never returning None; gRPC documents
        # None as "keep the current certificate".
        fetcher = cast("Callable[[], grpc.ServerCertificateConfiguration]", self.fetch)
        self.credentials = grpc.dynamic_ssl_server_credentials(
            material.configuration(), fetcher, require_client_authentication=self.mutual
        )

    def reload(self) -> None:
        """Re-reads the files at the next handshake even if they look unchanged (SIGHUP)."""
        with self._lock:
            self._reload_requested = True
        logger.info("tls: the certificate files will be re-read at the next connection")

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """The files' new contents when they changed or a reload was asked for, else None.

        Called by gRPC core before every TLS handshake, possibly on a thread
        other than the event loop's; it never touches the event loop.
        """
        with self._lock:
            stamp = _stamp(self._tls)
            if not self._reload_requested and stamp in (self._loaded, self._failed):
                return None
            try:
                material = _read_and_check(self._tls)
            except ConfigError as exc:
                if _stamp(self._tls) == stamp:
                    self._failed, self._reload_requested = stamp, False
                    logger.warning("%s; keeping the current certificate", exc)
                return None
            if _stamp(self._tls) != stamp:
                return None  # replaced while being read: the next handshake reads them again
            self._loaded, self._failed, self._reload_requested = stamp, None, False
        logger.info("tls: loaded the certificate in %s for new connections", self._tls.cert_file)
        return material.configuration()


def describe(config: Config) -> str:
    """How the port is secured: ``plaintext``, ``TLS`` or ``mutual TLS``."""
    if config.tls is None:
        return "plaintext"
    return "TLS" if config.tls.client_ca_file is None else "mutual TLS"


def exposure_warning(config: Config, port: int) -> str | None:
    """A warning when a port beyond loopback takes every caller, else None.

    That is a plaintext or TLS port on a non-loopback host with no ``auth``
    section and no client certificates required.
    """
    mutual = config.tls is not None and config.tls.client_ca_file is not None
    if config.auth is not None or mutual or is_loopback(config.server.host):
        return None
    return EXPOSED_WARNING.format(host=config.server.host, port=port)


def listen(server: grpc.aio.Server, config: ServerConfig, tls: ServerTLS | None) -> int:
    """Binds ``config.host:config.port``, with TLS when given; returns the bound port."""
    address = f"{config.host}:{config.port}"
    if tls is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, tls.credentials)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (brackets around IPv6 allowed)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def _load_at_start(tls: TLSConfig) -> tuple[_Stamp, _Material]:
    for _ in range(_START_ATTEMPTS):
        stamp = _stamp(tls)
        material = _read_and_check(tls)
        if _stamp(tls) == stamp:
            return stamp, material
    raise ConfigError(f"tls.cert_file: {tls.cert_file} and its key kept changing while read")


def _stamp(tls: TLSConfig) -> _Stamp:
    stamps: list[tuple[int, int, int, int] | None] = []
    for path in (tls.cert_file, tls.key_file, tls.client_ca_file):
        if path is None:
            continue
        try:
            stat = path.stat()
        except OSError:
            stamps.append(None)
        else:
            stamps.append((stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))
    return tuple(stamps)


def _read_and_check(tls: TLSConfig) -> _Material:
    """The files' contents, checked as ``ssl`` would load them.

    Raises:
        ConfigError: Naming the key of the first file at fault.
    """
    cert = _read("tls.cert_file", tls.cert_file)
    key = _read("tls.key_file", tls.key_file)
    _check_certificates("tls.cert_file", tls.cert_file, cert)
    _check_key(tls)
    client_ca = None
    if tls.client_ca_file is not None:
        client_ca = _read("tls.client_ca_file", tls.client_ca_file)
        _check_certificates("tls.client_ca_file", tls.client_ca_file, client_ca)
    return _Material(cert, key, client_ca)


def _read(name: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None


def _check_certificates(name: str, path: Path, data: bytes) -> None:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=data.decode("ascii"))
    except (ValueError, ssl.SSLError):
        raise ConfigError(f"{name}: {path} holds no PEM certificate") from None


def _check_key(tls: TLSConfig) -> None:
    def encrypted() -> str:
        raise ConfigError(f"tls.key_file: {tls.key_file} is encrypted; give an unencrypted key")

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
            tls.cert_file, tls.key_file, password=encrypted
        )
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                f"tls.key_file: {tls.key_file} does not match the certificate in "
                f"tls.cert_file ({tls.cert_file})"
            ) from None
        raise ConfigError(f"tls.key_file: {tls.key_file} holds no PEM private key") from None
    except OSError as exc:  # removed since it was read: the files are being replaced
        raise ConfigError(f"tls.key_file: cannot read {tls.key_file}: {exc.strerror}") from None
