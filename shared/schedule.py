"""When a member is checked next, and how long a check may retry.

A *round* reads /health, /versions and (when configured) /metrics; rounds come every
period (± jitter), start to start, so a healthy member costs 2 requests a period (3 with
/metrics) whatever the fast interval. A member is *falling* when its latest /health failed
but flap damping has not reached ``fall`` (its verdict is still ok): its next checks read
/health alone, ``fast_interval`` apart, until it has failed ``fall`` times in a row (it is
excluded then, and waits ``failed_period`` like any failing member) or passes. That is
HAProxy's ``fastinter``: a failure is confirmed or dismissed in (fall - 1) fast intervals
instead of fall periods. The fast checks stand in for retries within a check, so a healthy
member's check retries no longer than the fast interval (:func:`retry_window`).

Times here are the checker's monotonic clock; the checker starts a member's next check only
once the one before has ended, so its checks never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.config import CheckConfig
from shared.observe import HealthStreak
from shared.records import MemberObservation

#: A whole round, or /health alone.
CheckKind = Literal["round", "health"]


@dataclass(frozen=True, slots=True)
class NextCheck:
    at: float  # when it starts, at the earliest
    kind: CheckKind


def is_falling(obs: MemberObservation | None, streak: HealthStreak) -> bool:
    """Its latest /health failed and its verdict is still ok: flap damping has not yet
    reached ``fall``, so the next failures decide soon."""
    return (
        obs is not None
        and obs.health is not None
        and obs.health.status == "ok"
        and streak.count < 0
    )


def next_check(check: CheckConfig, started: float, round_at: float, falling: bool) -> NextCheck:
    """The check after the one that started at ``started``, the next round being due at
    ``round_at``: /health alone a fast interval after this one started while the member is
    falling and the round is further off, else the round."""
    fast_at = started + check.fast_interval
    if falling and fast_at < round_at:
        return NextCheck(fast_at, "health")
    return NextCheck(round_at, "round")


def retry_window(check: CheckConfig, obs: MemberObservation | None) -> float:
    """How long after its start a check of the member may still retry a fetch: until its
    next check could be due. A failure of a healthy member (with ``fall`` above 1) is
    checked again a fast interval later; any other member's next check is a round, a
    period away."""
    healthy = obs is not None and obs.health is not None and obs.health.status == "ok"
    if healthy and check.fall > 1:
        return min(check.period, check.fast_interval)
    return check.period
