"""Configuration of who may call: TLS, API keys, client certificates, per-identity limits.

Part of the one configuration (``config.py`` holds the whole and re-exports
these sections).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, model_validator

from llmrouter_server.config_base import Section as _Section


class TLSConfig(_Section):
    """TLS for the gRPC port; with ``client_ca_file``, mutual TLS.

    The files are re-read when they change (checked on each new connection)
    and on SIGHUP; running streams keep their connections.
    """

    cert_file: Path
    """The server's certificate chain, PEM."""
    key_file: Path
    """The server's private key, PEM."""
    client_ca_file: Path | None = None
    """CA certificates, PEM, that client certificates must chain to; set, every
    client must present a certificate (mutual TLS)."""


class OnLimit(StrEnum):
    """What happens to a request over one of its identity's limits."""

    REJECT = "reject"
    """RESOURCE_EXHAUSTED with RetryInfo saying when to come back."""
    QUEUE = "queue"
    """Wait (with ``queued`` events) until the limit allows it, within the call's deadline."""


class IdentityLimits(_Section):
    """What one identity (an API key or a client certificate) may use; unset is unlimited."""

    concurrent_generations: int | None = Field(None, gt=0)
    """Generations running (or queued) at once."""
    requests_per_minute: int | None = Field(None, gt=0)
    """Generations started per minute (a token bucket refilled continuously)."""
    output_tokens_per_minute: int | None = Field(None, gt=0)
    """Output tokens per minute: a request reserves its ``max_tokens`` at admission
    and unused tokens are refunded from the real usage when it ends."""
    queue_share: float = Field(0.5, gt=0, le=1)
    """The fraction of a backend's queue this identity's requests may fill."""
    on_limit: OnLimit = OnLimit.REJECT
    """``reject`` or ``queue`` when a limit is reached."""
    max_queued: int = Field(64, gt=0)
    """``on_limit: queue``: requests waiting for this identity's limits at once; more
    get RESOURCE_EXHAUSTED."""


class Role(StrEnum):
    """What an identity may see and touch."""

    USER = "user"
    """Its own tenant's generations only."""
    ADMIN = "admin"
    """Every tenant's generations."""


class APIKeyConfig(_Section):
    """One API key, stored as the SHA-256 of the key (never the key itself)."""

    id: str = Field(min_length=1)
    """A name for the key, shown in logs (never the key)."""
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    """The hex SHA-256 of the key: ``printf %s "$KEY" | sha256sum``."""
    tenant: str = Field(min_length=1)
    """The tenant whose generations this key starts and sees."""
    role: Role = Role.USER
    """``user`` or ``admin``."""
    limits: IdentityLimits = IdentityLimits()
    """What this key may use."""


class ClientCertificateConfig(_Section):
    """An identity given by a mutual-TLS client certificate's subject common name."""

    common_name: str = Field(min_length=1)
    """The certificate's subject CN."""
    tenant: str = Field(min_length=1)
    """The tenant."""
    role: Role = Role.USER
    """``user`` or ``admin``."""
    limits: IdentityLimits = IdentityLimits()
    """What this identity may use."""


PUBLIC_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
)
"""Services reachable without credentials by default (probes and grpcurl)."""


class AuthConfig(_Section):
    """Who may call; with no ``auth`` section the server is open (local development)."""

    api_keys: list[APIKeyConfig] = Field(default_factory=list)
    """Keys accepted in ``authorization: Bearer <key>`` metadata."""
    api_keys_file: Path | None = None
    """A YAML file holding a list of keys in the same shape (a mounted Secret);
    re-read when it changes."""
    client_certificates: list[ClientCertificateConfig] = Field(default_factory=list)
    """Identities from mutual-TLS client certificates (needs ``tls.client_ca_file``)."""
    public_services: list[str] = Field(default_factory=lambda: list(PUBLIC_SERVICES))
    """Fully qualified services callable without credentials."""

    @model_validator(mode="after")
    def _some_identity(self) -> AuthConfig:
        if not (self.api_keys or self.api_keys_file or self.client_certificates):
            raise ValueError(
                "give api_keys, api_keys_file or client_certificates "
                "(remove the auth section to run without authentication)"
            )
        ids = [key.id for key in self.api_keys]
        if len(ids) != len(set(ids)):
            raise ValueError("api_keys: every id must be unique")
        return self
