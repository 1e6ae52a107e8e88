"""Slow start: a member that is eligible again after an exclusion, or new, ramps from
:data:`FLOOR` of its weight to all of it over ``slow_start`` seconds.

The ramp starts at the instant the checker first saw the member eligible again, which it
publishes in the member's record (``eligible_since``), so every router ramps alike and
neither a router's start nor a config reload starts a ramp. The ramp moves in
:data:`STEPS` steps, each a deadline of the view (:mod:`shared.deadline`), judged like the
other time rules as of the checker's heartbeat. Its curve is quadratic (Envoy's slow start
with an aggression of 0.5): the first minute of a 300 s ramp stays near 10 %, where a
linear ramp would already give a recovered member a fifth of its weight.
"""

from __future__ import annotations

import math

FLOOR = 0.1  # of its weight, where a ramp starts
STEPS = 10


def ramp_step(since: float | None, as_of: float, slow_start: float) -> int:
    """How far the ramp of a member eligible since ``since`` has gone at ``as_of``, from 0
    to :data:`STEPS` (done; also without a ramp: ``since`` None or ``slow_start`` 0)."""
    if since is None or slow_start <= 0:
        return STEPS
    elapsed = as_of - since
    if elapsed >= slow_start:
        return STEPS
    return max(0, math.floor(elapsed * STEPS / slow_start))


def ramp_factor(step: int) -> float:
    """The factor on a member's weight at ``step`` of its ramp: FLOOR, rising as the square
    of the time to 1 at the last step."""
    return FLOOR + (1 - FLOOR) * (step / STEPS) ** 2


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
