"""Slow start: a member that is eligible again after an exclusion, or new, ramps from
:data:`FLOOR` of its weight to all of it over ``slow_start`` seconds.

The ramp starts at the instant the checker first saw the member eligible again, which it
publishes in the member's record (``eligible_since``), so every router ramps alike and
neither a router's start nor a config reload starts a ramp. The ramp moves in
:data:`STEPS` steps, each a deadline of the view (:mod:`shared.deadline`), judged like the
other time rules as of the checker's heartbeat. Its curve is Envoy's slow start with an
aggression of 0.5 and a floor of 10 %: the square of the time, never under the floor. The
first minute of a 300 s ramp stays at 10 %, where a linear ramp would already give a
recovered member a fifth of its weight.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

FLOOR = 0.1  # of its weight, where a ramp starts
STEPS = 10
#: The exclusions after which a member does not ramp: a full member kept being checked
#: healthy, and its capacity share already brings its weight back a twentieth at a time.
NO_BREAK = frozenset({"full"})


def ramp_step(since: float | None, as_of: float, slow_start: float) -> int:
    """How far the ramp of a member eligible since ``since`` has gone at ``as_of``, from 0
    to :data:`STEPS` (done; also without a ramp: ``since`` None or ``slow_start`` 0)."""
    if since is None or slow_start <= 0:
        return STEPS
    return min(STEPS, max(0, math.floor((as_of - since) * STEPS / slow_start)))


def ramp_factor(step: int) -> float:
    """The factor on a member's weight at ``step`` of its ramp: the square of the time
    gone, never under FLOOR, 1 at the last step."""
    return max(FLOOR, (step / STEPS) ** 2)


def step_at(since: float, step: int, slow_start: float) -> float:
    """The instant a ramp that started at ``since`` reaches ``step`` (about: the deadline
    machinery asks :func:`ramp_step` itself at neighbouring instants)."""
    return since + step * slow_start / STEPS


def next_eligible_since(
    published: float | None, has_record: bool, eligible: bool, now: float
) -> float | None:
    """What a member's record says of its eligibility after the checker's evaluation at
    ``now``: when it became eligible without a break since (kept while it stays eligible),
    None while it is excluded. A member with no record yet (new) or one that was excluded
    (``published`` None) starts its ramp now."""
    if not eligible:
        return None
    if has_record and published is not None:
        return published
    return now


def in_rotation(excluded_by: Iterable[str]) -> bool:
    """Whether a member excluded by ``excluded_by`` (the rules of a view's member) counts
    as eligible for its slow start: excluded by nothing, or only by :data:`NO_BREAK`."""
    return NO_BREAK.issuperset(excluded_by)


def ramp_at(since: float | None, as_of: float, slow_start: float) -> float:
    """The slow-start factor of a member eligible since ``since``, at ``as_of`` (1: none)."""
    return ramp_factor(ramp_step(since, as_of, slow_start))


def next_change(since: float, as_of: float, slow_start: float) -> float:
    """About when the factor of a ramp under way at ``as_of`` next changes: the start of
    the first later step with another factor (the floor's steps change nothing)."""
    step = ramp_step(since, as_of, slow_start)
    later = step + 1
    while ramp_factor(later) == ramp_factor(step):  # the last step's 1 ends it
        later += 1
    return step_at(since, later, slow_start)
