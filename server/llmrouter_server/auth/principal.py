"""The caller identity every domain call receives.

The gRPC layer turns credentials (an API key, a client certificate) into a
``Principal`` once per call; the domain never reads metadata. A generation
belongs to the principal that started it: its tenant sees it, other tenants
do not (unless admin).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmrouter_server.config import IdentityLimits, Role


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    identity: str
    """The API key id or certificate common name; shown in logs, never a secret."""
    tenant: str
    """The tenant whose generations this caller starts and sees."""
    role: Role = Role.USER
    """``user``: its tenant's generations; ``admin``: every tenant's."""
    limits: IdentityLimits = field(default_factory=IdentityLimits)
    """What this identity may use."""
    entry: str = field(default="", compare=False)
    """The configuration entry defining the identity (``auth.api_keys[team-a]``,
    ``auth.client_certificates[ci-runner]``): errors name a limit by its key."""

    @property
    def admin(self) -> bool:
        """True when the caller sees and touches every tenant's generations."""
        return self.role is Role.ADMIN

    def sees(self, tenant: str) -> bool:
        """True when generations of ``tenant`` are visible to this caller."""
        return self.admin or tenant == self.tenant


OPEN = Principal(
    identity="anonymous", tenant="", role=Role.ADMIN, limits=IdentityLimits(queue_share=1.0)
)
"""Every caller when the server has no ``auth`` section: one tenant, sees everything,
and no limit of its own (a backend's queue bound still applies)."""
