"""When a member is checked next, what each check reads, and how long it may retry.

A member's first check reads /health, /versions and (when configured) /metrics at once, so
its versions and the reference are known at once. After it, *rounds* come every period (±
jitter), start to start, each reading /health and /metrics; the *versions half-round*
reads /versions alone midway between two rounds. A healthy member still costs 2 requests a
period (3 with /metrics; one /versions more in its first period), but it is sampled every
half period, so a member that dies is seen within half a period (stretched by jitter)
instead of a whole one.

A member is *falling* when its latest /health failed but flap damping has not reached
``fall`` (its verdict is still ok): its next checks read /health alone, ``fast_interval``
apart, until it has failed ``fall`` times in a row (it is excluded then, and waits
``failed_period`` for its /health, its /versions still read every period) or passes.
That is HAProxy's ``fastinter``: a failure is confirmed or dismissed in (fall - 1) fast
intervals instead of fall periods. A versions half-round that reached nobody (refused,
reset, timed out) of a member whose verdict is ok brings its /health forward, at once
(:func:`brings_health_forward`): the verdict still comes from /health alone, and the
extra requests come only while something is wrong. The fast checks stand in for retries
within a check, so a healthy member's check retries no longer than the fast interval
(:func:`retry_window`).

So a member killed right after its round is excluded at most half a period x (1 +
jitter) + (fall - 1) x fast_interval later (plus the checks' own durations).

Times here are the checker's monotonic clock; the checker starts a member's next check only
once the one before has ended, so its checks never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.config import CheckConfig
from shared.observe import HealthStreak
from shared.records import MemberObservation

#: What a check reads: ``whole`` everything at once (a member's first check), ``round``
#: /health (unless it waits ``failed_period``) and /metrics, ``versions`` /versions alone
#: (the half-round), ``health`` /health alone (a fast check, or one brought forward).
CheckKind = Literal["whole", "round", "versions", "health"]

#: The endpoints each kind of check reads (/metrics only where configured).
READS: dict[CheckKind, frozenset[str]] = {
    "whole": frozenset({"health", "versions", "metrics"}),
    "round": frozenset({"health", "metrics"}),
    "versions": frozenset({"versions"}),
    "health": frozenset({"health"}),
}

#: Which goes first of two checks due at the same moment: a round reads /health too, and
#: a verdict matters more than versions.
_PRECEDENCE: dict[CheckKind, int] = {"whole": 0, "round": 0, "health": 1, "versions": 2}


@dataclass(frozen=True, slots=True)
class NextCheck:
    at: float  # when it starts, at the earliest
    kind: CheckKind


@dataclass(frozen=True, slots=True)
class Plan:
    """A member's checks due until its next round, included."""

    round_at: float  # the next round
    versions_at: float | None = None  # this period's versions half-round; None: /versions read
    health_at: float | None = None  # /health alone before the round: a fast check, or at once


def is_falling(obs: MemberObservation | None, streak: HealthStreak) -> bool:
    """Its latest /health failed and its verdict is still ok: flap damping has not yet
    reached ``fall``, so the next failures decide soon."""
    return (
        obs is not None
        and obs.health is not None
        and obs.health.status == "ok"
        and streak.count < 0
    )


def round_plan(started: float, round_at: float) -> Plan:
    """The plan a round (or a member's first check) that started at ``started`` sets, the
    next round being due at ``round_at``: the versions half-round midway. The first check
    read /versions too, yet its period keeps its half-round, so a member that dies then is
    seen as soon as in any other period."""
    return Plan(round_at, (started + round_at) / 2)


def brings_health_forward(obs: MemberObservation | None, versions_unreached: bool) -> bool:
    """A /versions fetch that reached nobody (refused, reset, timed out) says the member may
    be gone: its /health is read at once when its verdict is ok. A bad answer (404, invalid
    JSON) came from the member, and a member already excluded waits ``failed_period``."""
    healthy = obs is not None and obs.health is not None and obs.health.status == "ok"
    return versions_unreached and healthy


def after_check(
    check: CheckConfig,
    plan: Plan,
    kind: CheckKind,
    started: float,
    *,
    falling: bool,
    health_now: bool = False,
) -> Plan:
    """The plan once a check of ``kind`` that started at ``started`` has ended: a check that
    read /health sets the next /health alone a fast interval after its start while the
    member is falling (none otherwise); a versions half-round marks /versions read and, with
    ``health_now`` (:func:`brings_health_forward`), sets /health alone at once. A /health
    due no sooner than the round is left to the round, which reads it."""
    health_at = plan.health_at
    versions_at = plan.versions_at
    if "health" in READS[kind]:
        health_at = started + check.fast_interval if falling else None
    if kind == "versions":
        versions_at = None
        if health_now:
            health_at = started
    if health_at is not None and health_at >= plan.round_at:
        health_at = None
    return Plan(plan.round_at, versions_at, health_at)


def next_check(plan: Plan) -> NextCheck:
    """The earliest check the plan holds; of two due together, the one that reads /health."""
    due = [NextCheck(plan.round_at, "round")]
    if plan.versions_at is not None:
        due.append(NextCheck(plan.versions_at, "versions"))
    if plan.health_at is not None:
        due.append(NextCheck(plan.health_at, "health"))
    return min(due, key=lambda c: (c.at, _PRECEDENCE[c.kind]))


def retry_window(check: CheckConfig, obs: MemberObservation | None) -> float:
    """How long after its start a check of the member may still retry a fetch: until its
    next check could be due. A member's first check (no record yet) is followed by a round,
    a period away; any later check by one half a period away at most (the versions
    half-round, or the round after it), and a failure of a healthy member (with ``fall``
    above 1) is checked again a fast interval later."""
    if obs is None:
        return check.period
    healthy = obs.health is not None and obs.health.status == "ok"
    if healthy and check.fall > 1:
        return min(check.period / 2, check.fast_interval)
    return check.period / 2
