"""The rules that exclude a member, one named function each, the outage rule and the instant
records are judged at, and what in a new record can move a member's state
(:func:`state_may_change`). :mod:`shared.evaluate` applies them in precedence
order; :mod:`shared.deadline` asks the time-based ones when they next change.
"""

from __future__ import annotations

from shared.capacity import free_pods, free_share, headroom_pods
from shared.config import FederationConfig
from shared.records import CheckerHeartbeat, Drain, MemberObservation
from shared.reference import Reference


def drained_reason(drain: Drain | None) -> str | None:
    if drain is None:
        return None
    return f"drained by an operator: {drain.reason}" if drain.reason else "drained by an operator"


def stale_reason(obs: MemberObservation | None, now: float, max_age: float) -> str | None:
    """A record the checker has not refreshed within ``max_age`` cannot be trusted."""
    if obs is None:
        return "no observation published yet"
    if now - obs.checked_at > max_age:
        # No age in the words: a reason holds as long as the view, however old that gets.
        return f"record not refreshed for more than {max_age:.0f}s"
    return None


def unreachable_reason(obs: MemberObservation | None) -> str | None:
    if obs is None or obs.health is None:
        return None
    if obs.health.status == "unreachable":
        return "; ".join(obs.health.reasons) or "health endpoint unreachable"
    return None


def unhealthy_reason(obs: MemberObservation | None) -> str | None:
    if obs is None or obs.health is None:
        return "health not observed yet" if obs is not None else None
    if obs.health.status == "unhealthy":
        return "; ".join(obs.health.reasons) or "health check failed"
    return None


def failing_reason(obs: MemberObservation | None, as_of: float) -> str | None:
    """Ejected for failing its launches (``shared.outcomes``) until ``ejected_until``."""
    outcomes = obs.outcomes if obs else None
    if outcomes is None or outcomes.ejected_until is None or as_of >= outcomes.ejected_until:
        return None
    return outcomes.ejection_reason or "ejected: its launches are failing"


def pods_and_quota(obs: MemberObservation | None) -> tuple[int, int] | None:
    """The pods and quota of a member whose last ``/health`` answered ok with both."""
    if obs is None or obs.health is None or obs.health.status != "ok":
        return None
    pods, quota = obs.health.total_pods, obs.health.quota
    return None if pods is None or quota is None else (pods, quota)


def full_reason(
    obs: MemberObservation | None, pod_headroom: int | str, pending: int = 0
) -> str | None:
    """Full when total_pods + the launches sent since that report (``pending``) + the
    headroom >= quota (no quota: never full)."""
    counted = pods_and_quota(obs)
    if counted is None:
        return None
    pods, quota = counted
    if free_pods(pods, quota, pod_headroom, pending) > 0:
        return None
    headroom = headroom_pods(pod_headroom, quota)
    share = f" ({pod_headroom})" if isinstance(pod_headroom, str) else ""
    sent = f" + {pending} launches since" if pending else ""
    return f"full: {pods} pods{sent} + headroom {headroom}{share} >= quota {quota}"


def capacity_share(obs: MemberObservation | None, pod_headroom: int | str) -> float | None:
    """The factor capacity puts on the member's weight (:func:`shared.capacity.free_share`);
    None when it reports no quota."""
    counted = pods_and_quota(obs)
    return None if counted is None else free_share(*counted, pod_headroom)


def heartbeat_too_old(
    config: FederationConfig, heartbeat: CheckerHeartbeat | None, now: float
) -> bool:
    """The outage rule: the checker (or Redis) is gone when its last heartbeat is older than
    ``outage.max_staleness`` by the wall clock. Without any heartbeat there is no outage."""
    if heartbeat is None:
        return False
    return max(0.0, now - heartbeat.at) > config.max_staleness


def judged_at(config: FederationConfig, heartbeat: CheckerHeartbeat | None, now: float) -> float:
    """The instant the freshness rules are judged at: the checker's last heartbeat ("has the
    checker refreshed this?"), or the wall clock without one or once outage policy ``all``
    applies (then records age as they are shown)."""
    if heartbeat is None:
        return now
    if config.outage.policy == "all" and heartbeat_too_old(config, heartbeat, now):
        return now
    return heartbeat.at


def version_mismatch_reason(differences: tuple[str, ...], reference: Reference) -> str | None:
    if reference.stale or reference.versions is None or not differences:
        return None
    if differences == ("*",):
        return "versions not observed recently; cannot compare with the reference"
    return f"version differs from the reference ({reference.source}) on: {', '.join(differences)}"


def state_may_change(
    old: MemberObservation | None, new: MemberObservation, pod_headroom: int | str
) -> bool:
    """Whether ``new`` differs from ``old`` in anything that can move a member's state, its
    weight or the reference: health verdict and reasons, its capacity share (in steps: not
    every pod, which changes with nearly every check of a busy member), the start of its
    slow start, versions, errors. A change only in the time of the check cannot: what time
    alone moves (a record or the reference growing old) is what :mod:`shared.deadline`
    tells apart."""
    if old is None or old.versions != new.versions:
        return True
    if old.settled_versions != new.settled_versions or old.last_error != new.last_error:
        return True
    if _ejection(old) != _ejection(new) or old.eligible_since != new.eligible_since:
        return True
    before, after = old.health, new.health
    if before is None or after is None:
        return before is not after
    if (before.status, before.reasons) != (after.status, after.reasons):
        return True
    # A share of 0 is full (no quota: None, never full), so fullness moves with the share.
    return capacity_share(old, pod_headroom) != capacity_share(new, pod_headroom)


def _ejection(obs: MemberObservation) -> tuple[float | None, str | None]:
    """What of a record's launch outcomes the failing rule reads (not the counts, which
    move with every read of a busy member's metrics)."""
    outcomes = obs.outcomes
    return (None, None) if outcomes is None else (outcomes.ejected_until, outcomes.ejection_reason)
