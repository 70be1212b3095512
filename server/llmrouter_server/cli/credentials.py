"""What the client commands present to the server: an API key and TLS settings.

Each setting comes from its option, else its environment variable (empty
counts as unset)::

    --api-key-file PATH      $LLMROUTER_API_KEY (the key itself)
    --tls-ca FILE            $LLMROUTER_TLS_CA
    --tls-cert FILE          $LLMROUTER_TLS_CERT
    --tls-key FILE           $LLMROUTER_TLS_KEY
    --tls-server-name NAME   $LLMROUTER_TLS_SERVER_NAME

``--tls`` or any TLS setting makes the connection TLS (without ``--tls-ca``
the system's root certificates are trusted). Messages name where a setting
came from, never the key.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from llmrouter import TLS, open_channel

from llmrouter_server.cli.errors import UsageError

API_KEY_ENV = "LLMROUTER_API_KEY"
"""The environment variable holding the API key when ``--api-key-file`` is not given."""

_PEM_BEGIN = b"-----BEGIN "
"""How every PEM block starts."""


@dataclass(frozen=True)
class Credentials:
    """The API key and TLS settings of the client commands, and where the key came from."""

    api_key: str | None = field(default=None, repr=False)
    """The key sent as ``authorization: Bearer <key>``; None sends none."""
    key_source: str = ""
    """Where the key came from, for messages: ``--api-key-file PATH`` or the variable."""
    tls: TLS | None = None
    """TLS settings; None connects in plaintext."""

    def channel(self, address: str) -> grpc.aio.Channel:
        """A channel to ``address`` that presents these credentials on every call."""
        return open_channel(address, api_key=self.api_key, tls=self.tls)


def resolve_credentials(args: argparse.Namespace, environ: Mapping[str, str]) -> Credentials:
    """The credentials the options and the environment give.

    Raises:
        UsageError: A file cannot be read or is not PEM, the key is empty or not
            printable ASCII, or a client certificate comes without its key (or
            the other way round); the message names the option or variable.
    """
    api_key, key_source = _api_key(args.api_key_file, environ)
    return Credentials(api_key, key_source, _tls(args, environ))


def _api_key(path: str | None, environ: Mapping[str, str]) -> tuple[str | None, str]:
    if path is not None:
        source = f"--api-key-file {path}"
        return _checked_key(_read(path, source).decode(errors="replace"), source), source
    from_env = environ.get(API_KEY_ENV)
    if from_env:
        return _checked_key(from_env, API_KEY_ENV), API_KEY_ENV
    return None, ""


def _checked_key(key: str, source: str) -> str:
    """The key without surrounding whitespace (a file's last newline)."""
    key = key.strip()
    if not key:
        raise UsageError(f"{source}: the API key is empty")
    if not all("!" <= char <= "~" for char in key):
        raise UsageError(f"{source}: an API key is printable ASCII without spaces")
    return key


@dataclass(frozen=True)
class _Setting:
    """A TLS setting: its option and the variable that stands in for it."""

    option: str
    variable: str

    def value(self, given: str | None, environ: Mapping[str, str]) -> tuple[str, str] | None:
        """The option's value, else the variable's, with where it came from; None when unset."""
        if given is not None:
            return given, self.option
        from_env = environ.get(self.variable)
        return (from_env, self.variable) if from_env else None


_CA = _Setting("--tls-ca", "LLMROUTER_TLS_CA")
_CERT = _Setting("--tls-cert", "LLMROUTER_TLS_CERT")
_KEY = _Setting("--tls-key", "LLMROUTER_TLS_KEY")
_SERVER_NAME = _Setting("--tls-server-name", "LLMROUTER_TLS_SERVER_NAME")
_PAIR = "a client certificate and its private key go together"


def _tls(args: argparse.Namespace, environ: Mapping[str, str]) -> TLS | None:
    ca = _CA.value(args.tls_ca, environ)
    cert = _CERT.value(args.tls_cert, environ)
    key = _KEY.value(args.tls_key, environ)
    name = _SERVER_NAME.value(args.tls_server_name, environ)
    if not (args.tls or ca or cert or key or name):
        return None
    if cert is not None and key is None:
        raise UsageError(f"{cert[1]} needs {_KEY.option} or ${_KEY.variable}: {_PAIR}")
    if key is not None and cert is None:
        raise UsageError(f"{key[1]} needs {_CERT.option} or ${_CERT.variable}: {_PAIR}")
    server_name = None if name is None else name[0]
    return TLS(ca=_pem(ca), cert=_pem(cert), key=_pem(key), server_name=server_name)


def _pem(setting: tuple[str, str] | None) -> bytes | None:
    if setting is None:
        return None
    path, source = setting
    data = _read(path, f"{source} {path}")
    if _PEM_BEGIN not in data:
        raise UsageError(f"{source} {path}: not a PEM file (no '-----BEGIN' line)")
    return data


def _read(path: str, source: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise UsageError(f"{source}: cannot read it ({reason})") from error
