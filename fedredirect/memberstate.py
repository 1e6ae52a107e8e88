"""What a simulated member reports and how it behaves, as one mutable record, and the rules
that read from it: the pods it runs, "full" (for /health and for launches alike), and which
launches fail."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

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
    # Share of launches (0..1) that fail once started, as BinderHub's do when JupyterHub
    # cannot start the server; `launch_fails` spreads them evenly, so tests need no luck.
    launch_failure_share: float = 0.0
    # Launches started since launch_failure_share was last set: the count it is spread over.
    launches_at_share: int = 0
    # Seconds the user pod of a launch that reached ``ready`` runs, as BinderHub's launches
    # fill a member; 0: launches start none, and the member runs total_pods alone. The pods
    # total_pods says are the idle baseline that launched pods add to.
    pod_lifetime: float = 0.0
    # When each launched pod goes away, on the time.monotonic() clock: counted by `pods`,
    # never set through POST /_sim (GET /_sim shows how many run as launched_pods).
    pod_ends: list[float] = field(default_factory=list)


def pods(state: MemberSimState, now: float) -> int:
    """The pods the member runs at ``now``: its baseline and the launched pods not ended."""
    return state.total_pods + launched_pods(state.pod_ends, now)


def launched_pods(ends: list[float], now: float) -> int:
    """How many launched pods still run at ``now``."""
    return sum(end > now for end in ends)


def add_pod(ends: list[float], now: float, lifetime: float) -> list[float]:
    """The launched pods' ends once a launch reached ``ready`` at ``now``: one more that ends
    ``lifetime`` later (none when it is 0), and those already ended forgotten."""
    running = [end for end in ends if end > now]
    return [*running, now + lifetime] if lifetime > 0 else running


def is_full(state: MemberSimState, now: float) -> bool:
    """No room for another user pod: /health reports its quota check failed, launches fail."""
    return state.quota is not None and pods(state, now) >= state.quota


def launch_fails(share: float, launch: int) -> bool:
    """Whether the ``launch``-th launch (from 1) fails at ``share``: exactly when
    floor(launch * share) grows, so 0.5 fails every second launch and any ``launch`` first
    ones hold floor(launch * share) failures. Exact arithmetic on the decimal the share was
    written as, so 0.1 fails the tenth launch and not the eleventh."""
    exact = Fraction(str(share))
    return math.floor(launch * exact) > math.floor((launch - 1) * exact)
