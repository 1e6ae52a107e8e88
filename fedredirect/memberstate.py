"""What a simulated member reports and how it behaves, as one mutable record, and the rule
that reads "full" from it (for /health and for launches alike)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fedredirect.buildtoken import DEV_SECRET

DEFAULT_QUOTA = 100
IDLE_PODS = 10


@dataclass
class MemberSimState:
    """What the simulated member reports; mutable so tests and POST /_sim can change it live."""

    name: str
    binderhub_version: str = "1.0.0-0.dev.git.3520.h1234abcd"
    repo2docker_version: str = "2024.07.0"
    total_pods: int = IDLE_PODS
    quota: int | None = DEFAULT_QUOTA
    hub_ok: bool = True
    registry_ok: bool = True
    fault: str | None = None
    delay: float = 0.0
    flap: bool = False  # each /health answer alternates healthy / unhealthy
    flap_versions: str | None = None  # each /versions answer alternates with this version
    health_body: str | None = None  # answer /health with exactly this body (HTTP 200)
    health_shape: str | None = None  # answer /health with a recorded shape (fedredirect.shapes)
    versions_shape: str | None = None  # answer /versions with a recorded shape
    build_delay: float = 0.05  # seconds before each event of a launch (GET /build/...)
    built: list[str] = field(default_factory=list)  # images this member has built (cached)
    # BinderHub's build-token settings (fedredirect.buildtoken): the secret in hex, shared
    # by the members of a federation, and whether a token's origin must match the launch's.
    build_token_secret: str = DEV_SECRET
    build_token_check_origin: bool = True
    # BinderHub's RateLimiter: launches without a valid build token allowed per client
    # address and period (seconds); 0 turns the limit off.
    rate_limit: int = 10
    rate_limit_period: int = 3600


def is_full(state: MemberSimState) -> bool:
    """No room for another user pod: /health reports its quota check failed, launches fail."""
    return state.quota is not None and state.total_pods >= state.quota
