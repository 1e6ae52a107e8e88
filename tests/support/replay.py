"""Tiny histories for replay: two members, a (the prime) and b, observed every minute."""

from __future__ import annotations

from typing import Any

from shared.config import FederationConfig, parse_config
from shared.history import config_event, observation_event
from shared.records import HealthObservation, LaunchOutcomes, MemberObservation

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
    member: str,
    at: float,
    status: str = "ok",
    pods: int = 0,
    versions: dict[str, str] = V1,
    outcomes: LaunchOutcomes | None = None,
) -> dict[str, Any]:
    """The history event of one observation of ``member`` at ``at`` (quota 100)."""
    health = HealthObservation(status, () if status == "ok" else ("boom",), pods, 100, at)  # type: ignore[arg-type]
    record = MemberObservation(
        member, at, health, versions=versions, versions_at=at, outcomes=outcomes
    )
    return observation_event(record)


def history(end: float = 900, **special: Any) -> list[dict[str, Any]]:
    """Both members observed every minute from 0 to ``end``; ``special`` maps a member to
    a function of time giving obs() keyword arguments."""
    events = [config_event(config(), 0.0)]
    for t in range(0, int(end) + 1, 60):
        for m in ("a", "b"):
            events.append(obs(m, float(t), **special.get(m, lambda t: {})(t)))
    return events


EJECTION = "launches failing: 10 of 20 failed in the last 60s (50% > 25%); ejected for 300s"


def failing_history(end: float = 1800) -> list[dict[str, Any]]:
    """b fails half of its 20 launches a window from 300 s to 1200 s; the checker ejects
    it from 300 s to 600 s (its records say so, and the transitions it recorded); after
    that its launches keep failing (they reach it directly) until 1200 s."""

    def outcomes(t: float) -> dict[str, Any]:
        failures = 10 if 300 <= t < 1200 else 0
        until = 600.0 if 300 <= t < 600 else None
        counted = LaunchOutcomes(
            20,
            failures,
            60.0,
            t,
            ejected_until=until,
            ejection_reason=EJECTION if until else None,
            ejections=1 if t >= 300 else 0,
        )
        return {"outcomes": counted}

    change = {"event": "member_state_changed", "member": "b", "excluded_by": []}
    return [
        *history(end, b=outcomes),
        {**change, "member": "a", "old": None, "new": "eligible", "at": 0.0, "reasons": []},
        {**change, "old": None, "new": "eligible", "at": 0.0, "reasons": []},
        {**change, "old": "eligible", "new": "failing", "at": 300.0, "reasons": [EJECTION]}
        | {"excluded_by": ["failing"]},
        {**change, "old": "failing", "new": "eligible", "at": 600.0, "reasons": []},
    ]
