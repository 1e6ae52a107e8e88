"""Folding one round of checks into a member's observation record.

Versions and health are independent: a failed /versions fetch keeps the last observed
versions (with their old timestamp, so their age shows), and a failed /health fetch never
touches versions.

Flap damping lives here too: a member's health verdict changes only after ``rise``
consecutive good or ``fall`` consecutive bad answers (the first answer counts at once, and
so does a bad answer to a record that had gone stale), and the versions that feed the
reference settle only after ``min_dwell`` seconds unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.records import HealthObservation, MemberObservation


def health_failure(error: str, transport: bool, now: float) -> HealthObservation:
    """A /health fetch without a usable answer: unreachable if nobody answered."""
    return HealthObservation("unreachable" if transport else "unhealthy", (error,), observed_at=now)


@dataclass(frozen=True, slots=True)
class HealthStreak:
    """Flap damping's state for one member: ``count`` /health answers in a row were ok
    (> 0) or failed (< 0); 0 before the first.

    The checker keeps it beside the record it publishes, not in it: no reader of the store
    needs it. A checker starts with neither, so its first answer counts at once; a standby
    that takes over the lease has been checking all along and keeps its own streaks."""

    count: int = 0


def next_observation(
    previous: MemberObservation | None,
    member: str,
    now: float,
    *,
    health: HealthObservation | None,
    versions: dict[str, str] | None,
    versions_error: str | None,
    streak: HealthStreak = HealthStreak(),
    health_url: str | None = None,
    versions_url: str | None = None,
    rise: int = 1,
    fall: int = 1,
    min_dwell: float = 0.0,
    stale_after: float | None = None,
) -> tuple[MemberObservation, HealthStreak]:
    """The record and the streak after one round; ``health`` None means /health was not
    due this round. ``streak`` is the one the previous round returned beside ``previous``.

    ``health_url`` and ``versions_url`` are the URLs that answered (after redirects), when
    an answer came. ``stale_after`` is the config's: see :func:`record_lapsed`."""
    lapsed = record_lapsed(previous, now, stale_after)
    obs = previous or MemberObservation(member=member, checked_at=now)
    obs = replace(obs, checked_at=now)
    if health_url is not None:
        obs = replace(obs, health_url=health_url)
    if versions_url is not None:
        obs = replace(obs, versions_url=versions_url)
    if health is not None:
        streak = HealthStreak(_streak(streak.count, health.status == "ok"))
        verdict = damped_health(obs.health, health, streak.count, rise, fall, lapsed=lapsed)
        obs = replace(obs, health=verdict)
        if health.status != "ok" and health.reasons:
            obs = replace(obs, last_error=f"health: {health.reasons[0]}")
    if versions is not None:
        if obs.versions is not None and versions != obs.versions:
            obs = replace(
                obs, settled_versions=settled_versions(obs, now, min_dwell), versions_changed_at=now
            )
        obs = replace(obs, versions=dict(versions), versions_at=now, versions_error=None)
    elif versions_error is not None:
        obs = replace(obs, versions_error=versions_error, last_error=f"versions: {versions_error}")
    return obs, streak


def _streak(streak: int, ok: bool) -> int:
    if ok:
        return streak + 1 if streak > 0 else 1
    return streak - 1 if streak < 0 else -1


def record_lapsed(
    previous: MemberObservation | None, now: float, stale_after: float | None
) -> bool:
    """Whether the record had gone stale before this round ended (older than
    ``stale_after``, as :func:`shared.evaluate.stale_reason` judges it). Routers stopped
    trusting its verdict then, so a bad answer now must not bring that verdict back."""
    return (
        previous is not None and stale_after is not None and now - previous.checked_at > stale_after
    )


def damped_health(
    verdict: HealthObservation | None,
    answer: HealthObservation,
    streak: int,
    rise: int,
    fall: int,
    *,
    lapsed: bool = False,
) -> HealthObservation:
    """The health verdict after one more answer: it flips only after enough in a row.

    After a lapse (see :func:`record_lapsed`) a bad answer counts at once, as a first answer
    does; a good one still needs ``rise`` in a row to lift a bad verdict."""
    if verdict is None:
        return answer  # the first answer counts at once: no delay at start-up
    if answer.status == "ok":
        return answer if verdict.status == "ok" or streak >= rise else verdict
    return answer if lapsed or verdict.status != "ok" or -streak >= fall else verdict


def settled_versions(
    obs: MemberObservation | None, now: float, min_dwell: float
) -> dict[str, str] | None:
    """The versions that count for the reference: the latest once unchanged for
    ``min_dwell`` seconds, else the ones settled before the latest change."""
    if obs is None or obs.versions is None:
        return None
    changed = obs.versions_changed_at
    if changed is None or obs.settled_versions is None or now - changed >= min_dwell:
        return obs.versions
    return obs.settled_versions


def health_is_failing(obs: MemberObservation, streak: HealthStreak) -> bool:
    """A member whose verdict and latest answer (if any) are both bad waits
    ``failed_period`` for its next /health; one that is rising or about to fall is
    rechecked every period."""
    return obs.health is not None and obs.health.status != "ok" and streak.count <= 0
