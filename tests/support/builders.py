"""Builders for the unit tests of the core: configs, observations, drains, targets and views.

``make_config`` and ``make_obs`` build a federation and what the checker saw of it at
``NOW``; ``federations`` draws a random one for property tests. tests/support/views.py
evaluates them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from hypothesis import strategies as st

from shared.balance import Target
from shared.config import FederationConfig, parse_config
from shared.records import Drain, HealthObservation, HealthStatus, MemberObservation

NOW = 1_700_000_000.0
V1 = {"binderhub": "1.0", "builder": "r2d:1"}
V2 = {"binderhub": "2.0", "builder": "r2d:2"}
V1B = {"binderhub": "1.0", "builder": "r2d:2"}  # V1 with only the builder upgraded
DEFAULT_WEIGHTS = {"alpha": 50, "beta": 50, "gamma": 30}
FULL_PODS = 95  # 95 + the default headroom 10 >= quota 100
DEFAULT_REASONS = {"unhealthy": ("check failed: JupyterHub API",), "unreachable": ("refused",)}


def url(name: str) -> str:
    return f"https://{name}.example.org"


def target(name: str, weight: float) -> Target:
    """A balancer's target named ``name`` at its example URL."""
    return Target(name, url(name), weight)


def make_config(
    weights: Mapping[str, float] | None = None,
    prime: str | None = "alpha",
    **settings: Any,
) -> FederationConfig:
    """A federation of ``weights`` (default alpha 50 prime, beta 50, gamma 30)."""
    weights = DEFAULT_WEIGHTS if weights is None else weights
    members = {n: {"url": url(n), "weight": w, "prime": n == prime} for n, w in weights.items()}
    return parse_config({"members": members, **settings}, "test")


def make_obs(
    name: str,
    now: float = NOW,
    *,
    pods: int | None = 10,
    quota: int | None = 100,
    status: str | None = "ok",
    reasons: Sequence[str] | None = None,
    versions: Mapping[str, str] | None = V1,
    versions_age: float = 0.0,
    record_age: float = 0.0,
) -> MemberObservation:
    """What the checker saw of ``name``; ``status`` None means /health never answered yet."""
    checked_at = now - record_age
    health = None
    if status is not None:
        why = tuple(reasons) if reasons is not None else DEFAULT_REASONS.get(status, ())
        health = HealthObservation(cast(HealthStatus, status), why, pods, quota, checked_at)
    return MemberObservation(
        member=name,
        checked_at=checked_at,
        health=health,
        versions=None if versions is None else dict(versions),
        versions_at=None if versions is None else now - versions_age,
    )


def observe_all(config: FederationConfig, **kwargs: Any) -> dict[str, MemberObservation]:
    return {name: make_obs(name, **kwargs) for name in config.members}


def drain(name: str, reason: str = "maintenance") -> Drain:
    return Drain(name, reason, NOW - 60)


# --- a random federation for the property tests ---------------------------------------------

NAMES = ("alpha", "beta", "gamma", "delta", "eps")
AGES = st.sampled_from([0.0, 5.0, 29.0, 30.0, 31.0, 100.0]) | st.floats(0, 120)


@st.composite
def observations_for(draw: st.DrawFn, name: str) -> MemberObservation | None:
    if draw(st.integers(0, 7)) == 0:
        return None
    return make_obs(
        name,
        status=draw(st.sampled_from(["ok", "ok", "ok", "unhealthy", "unreachable", None])),
        pods=draw(st.integers(0, 120)),
        quota=draw(st.none() | st.integers(0, 120)),
        versions=draw(st.sampled_from([V1, V1, V2, V1B, None])),
        versions_age=draw(AGES),
        record_age=draw(AGES),
    )


@st.composite
def federations(
    draw: st.DrawFn,
) -> tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]]:
    """(raw config document, observations, drains) for a random federation."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True))
    prime = draw(st.none() | st.sampled_from(names))
    weights = {n: draw(st.integers(1, 100)) for n in names}
    raw: dict[str, Any] = {
        "members": {n: {"url": url(n), "weight": weights[n], "prime": n == prime} for n in names},
        "load_balancer": draw(st.sampled_from(["rendezvous", "random"])),
        "pod_headroom": draw(st.integers(0, 20)),
    }
    versions: dict[str, Any] = {}
    reference = draw(st.sampled_from([None, "majority", "pinned", *(["prime"] if prime else [])]))
    if reference is not None:
        versions["reference"] = reference
    if reference == "pinned":
        versions["pinned"] = dict(draw(st.sampled_from([V1, V2, V1B])))
    if draw(st.booleans()):
        versions["keys"] = ["binderhub"]
    if versions:
        raw["versions"] = versions
    fallback = draw(st.sampled_from([None, "all", "none", *(["prime"] if prime else [])]))
    if fallback is not None:
        raw["fallback"] = fallback
    observations = {}
    for name in names:
        obs = draw(observations_for(name))
        if obs is not None:
            observations[name] = obs
    drained = draw(st.lists(st.sampled_from(names), unique=True, max_size=2))
    return raw, observations, {n: drain(n) for n in drained}


def federation() -> tuple[Any, dict[str, MemberObservation], dict[str, Drain]]:
    """alpha: the eligible prime; beta: full, with a versions error; gamma: drained and on
    other versions; delta: never observed."""
    config = parse_config(
        {
            "members": {
                "alpha": {"url": url("alpha"), "weight": 50, "prime": True},
                "beta": {"url": url("beta"), "weight": 40},
                "gamma": {"url": url("gamma"), "weight": 30},
                "delta": {"url": url("delta"), "weight": 20},
            },
            "outage": {"max_staleness": 40},
        },
        "test",
    )
    beta = replace(
        make_obs("beta", pods=FULL_PODS, record_age=3, versions_age=20),
        versions_error="versions answered HTTP 502",
        last_error="versions: versions answered HTTP 502",
    )
    observations = {
        "alpha": make_obs("alpha", pods=7, quota=80, record_age=2, versions_age=12),
        "beta": beta,
        "gamma": make_obs("gamma", versions=V2, record_age=4),
    }
    return config, observations, {"gamma": drain("gamma", "rack move")}
