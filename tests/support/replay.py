"""Tiny histories for replay: two members, a (the prime) and b, observed every minute."""

from __future__ import annotations

from typing import Any

from shared.config import FederationConfig, parse_config
from shared.history import config_event, observation_event
from shared.records import HealthObservation, MemberObservation

V1 = {"binderhub": "1"}
V2 = {"binderhub": "2"}


def config(**settings: Any) -> FederationConfig:
    return parse_config(
        {
            "members": {
                "a": {"url": "http://a.example", "weight": 1, "prime": True},
                "b": {"url": "http://b.example", "weight": 1},
            },
            "history": {"observation_interval": 60},
            **settings,
        }
    )


def obs(
    member: str, at: float, status: str = "ok", pods: int = 0, versions: dict[str, str] = V1
) -> dict[str, Any]:
    """The history event of one observation of ``member`` at ``at`` (quota 100)."""
    health = HealthObservation(status, () if status == "ok" else ("boom",), pods, 100, at)  # type: ignore[arg-type]
    record = MemberObservation(member, at, health, versions=versions, versions_at=at)
    return observation_event(record)


def history(end: float = 900, **special: Any) -> list[dict[str, Any]]:
    """Both members observed every minute from 0 to ``end``; ``special`` maps a member to
    a function of time giving obs() keyword arguments."""
    events = [config_event(config(), 0.0)]
    for t in range(0, int(end) + 1, 60):
        for m in ("a", "b"):
            events.append(obs(m, float(t), **special.get(m, lambda t: {})(t)))
    return events
