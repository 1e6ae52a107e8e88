"""Folding one round of checks into a member's observation record.

Versions and health are independent: a failed /versions fetch keeps the last observed
versions (with their old timestamp, so their age shows), and a failed /health fetch never
touches versions.
"""

from __future__ import annotations

from dataclasses import replace

from shared.records import HealthObservation, MemberObservation


def health_failure(error: str, transport: bool, now: float) -> HealthObservation:
    """A /health fetch without a usable answer: unreachable if nobody answered."""
    return HealthObservation("unreachable" if transport else "unhealthy", (error,), observed_at=now)


def next_observation(
    previous: MemberObservation | None,
    member: str,
    now: float,
    *,
    health: HealthObservation | None,
    versions: dict[str, str] | None,
    versions_error: str | None,
) -> MemberObservation:
    """The record after one round; ``health`` None means /health was not due this round."""
    obs = previous or MemberObservation(member=member, checked_at=now)
    obs = replace(obs, checked_at=now)
    if health is not None:
        obs = replace(obs, health=health)
        if health.status == "ok":
            obs = replace(obs, healthy_at=now)
        elif health.reasons:
            obs = replace(obs, last_error=f"health: {health.reasons[0]}", last_error_at=now)
    if versions is not None:
        obs = replace(obs, versions=dict(versions), versions_at=now, versions_error=None)
    elif versions_error is not None:
        obs = replace(
            obs,
            versions_error=versions_error,
            last_error=f"versions: {versions_error}",
            last_error_at=now,
        )
    return obs


def health_is_failing(obs: MemberObservation) -> bool:
    """A failing member waits ``failed_period`` for its next /health (full is not failing)."""
    return obs.health is not None and obs.health.status != "ok"
