"""When time alone next changes a verdict, so that a reader evaluates only on change.

The freshness rules (a stale record, versions too old to compare, a version still within its
reference dwell, an ejection for failing launches, a step of a slow start) are judged as of
one instant, ``as_of``: the checker's heartbeat. Each moves one way as ``as_of`` grows and
never back, so between a view's ``as_of`` and :func:`next_deadline` evaluating the same
records gives the same verdicts. The outage rule is judged by the wall clock against the heartbeat:
:func:`outage_deadline`. Every deadline asks the rule itself at neighbouring instants, so it
is exact in floating point and the rules keep one copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

from shared.config import FederationConfig
from shared.observe import settled_versions
from shared.records import CheckerHeartbeat, MemberObservation
from shared.reference import fresh_versions
from shared.rules import failing_reason, heartbeat_too_old, stale_reason
from shared.slowstart import next_change, ramp_at


class Freshness(NamedTuple):
    """What time alone decides about one record at one instant."""

    stale: bool  # shared.evaluate.stale_reason applies
    versions_fresh: bool  # its versions may be compared (shared.reference.fresh_versions)
    settled: bool  # its latest versions are past their dwell (shared.observe.settled_versions)
    ejected: bool  # shared.evaluate.failing_reason applies
    ramp: float  # its slow-start factor (shared.slowstart.ramp_at; 1: not ramping)


def freshness(config: FederationConfig, obs: MemberObservation | None, as_of: float) -> Freshness:
    """The verdicts of every time-based rule on ``obs`` as of ``as_of``."""
    settled = settled_versions(obs, as_of, config.versions_min_dwell)
    return Freshness(
        stale_reason(obs, as_of, config.stale_after) is not None,
        fresh_versions(obs, as_of, config.versions_max_age) is not None,
        # Identity: the dwell rule answers with the latest versions once they have settled.
        obs is None or settled is obs.versions,
        failing_reason(obs, as_of) is not None,
        ramp_at(obs.eligible_since if obs else None, as_of, config.slow_start),
    )


def first_instant(verdict: Callable[[float], bool], after: float, near: float) -> float:
    """The earliest instant at or after ``after`` at which ``verdict`` holds, for a verdict
    that does not hold at ``after`` and holds from some instant near ``near`` on. Stepping
    to the neighbouring floats asks the rule itself, so rounding cannot move the answer."""
    t = max(near, after)
    while not verdict(t):
        t = math.nextafter(t, math.inf)
    while t > after and verdict(math.nextafter(t, -math.inf)):
        t = math.nextafter(t, -math.inf)
    return t


def record_deadline(config: FederationConfig, obs: MemberObservation, as_of: float) -> float:
    """The earliest instant at or after ``as_of`` at which ``freshness(config, obs, t)``
    differs from its value at ``as_of`` (infinity: never)."""
    now = freshness(config, obs, as_of)
    deadlines = [math.inf]
    if not now.stale:
        max_age = config.stale_after
        deadlines.append(
            first_instant(
                lambda t: stale_reason(obs, t, max_age) is not None,
                as_of,
                obs.checked_at + max_age,
            )
        )
    if now.versions_fresh and obs.versions_at is not None:
        max_age = config.versions_max_age
        deadlines.append(
            first_instant(
                lambda t: fresh_versions(obs, t, max_age) is None,
                as_of,
                obs.versions_at + max_age,
            )
        )
    if not now.settled and obs.versions_changed_at is not None:
        dwell = config.versions_min_dwell
        deadlines.append(
            first_instant(
                lambda t: settled_versions(obs, t, dwell) is obs.versions,
                as_of,
                obs.versions_changed_at + dwell,
            )
        )
    outcomes = obs.outcomes
    if now.ejected and outcomes is not None and outcomes.ejected_until is not None:
        deadlines.append(
            first_instant(lambda t: failing_reason(obs, t) is None, as_of, outcomes.ejected_until)
        )
    since, slow_start = obs.eligible_since, config.slow_start
    if now.ramp < 1.0 and since is not None:
        deadlines.append(
            first_instant(
                lambda t: ramp_at(since, t, slow_start) != now.ramp,
                as_of,
                next_change(since, as_of, slow_start),
            )
        )
    return min(deadlines)


def next_deadline(
    config: FederationConfig, observations: Mapping[str, MemberObservation], as_of: float
) -> float:
    """The earliest instant at or after ``as_of`` at which a freshness verdict of any
    member's record changes (infinity: never): until then, judging the same records at
    any later instant gives the view judged at ``as_of``."""
    get = observations.get
    return min(
        (record_deadline(config, obs, as_of) for name in config.members if (obs := get(name))),
        default=math.inf,
    )


def outage_deadline(config: FederationConfig, heartbeat: CheckerHeartbeat | None) -> float:
    """The wall-clock instant at which ``heartbeat`` becomes too old (the outage rule,
    :func:`shared.evaluate.heartbeat_too_old`); infinity without a heartbeat."""
    if heartbeat is None:
        return math.inf
    return first_instant(
        lambda t: heartbeat_too_old(config, heartbeat, t),
        heartbeat.at,
        heartbeat.at + config.max_staleness,
    )
