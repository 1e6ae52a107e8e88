"""Slow start (shared.slowstart, issue 18): a member eligible again ramps from 10 % of its
weight to all of it over ``slow_start`` seconds, in steps that are deadlines of the view."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.deadline import next_deadline
from shared.evaluate import evaluate
from shared.records import CheckerHeartbeat
from shared.slowstart import FLOOR, STEPS, ramp_factor, ramp_step, step_at
from tests.support.builders import NOW, make_config, make_obs

durations = st.floats(1.0, 3600.0)


def test_the_ramp_starts_at_a_tenth_and_ends_at_the_whole_weight() -> None:
    assert ramp_factor(0) == FLOOR == 0.1
    assert ramp_factor(STEPS) == 1.0
    factors = [ramp_factor(step) for step in range(STEPS + 1)]
    assert factors == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.16, 0.25, 0.36, 0.49, 0.64, 0.81, 1])


def test_the_first_minute_of_a_300s_ramp_stays_near_a_tenth() -> None:
    """Issue 18's goal: <= 15 % of its full share in the first minute after a recovery."""
    per_second = [ramp_factor(ramp_step(NOW, NOW + t, 300.0)) for t in range(60)]
    assert max(per_second) == 0.1
    assert ramp_step(NOW, NOW + 300.0, 300.0) == STEPS


@given(
    slow_start=durations,
    elapsed=st.floats(-100.0, 5000.0),
    later=st.floats(0.0, 1000.0),
)
def test_a_ramp_only_rises_and_ends_at_slow_start(
    slow_start: float, elapsed: float, later: float
) -> None:
    as_of = NOW + elapsed
    step = ramp_step(NOW, as_of, slow_start)
    assert 0 <= step <= STEPS
    assert ramp_step(NOW, as_of + later, slow_start) >= step
    assert (step == STEPS) == (as_of - NOW >= slow_start)


@given(slow_start=durations, step=st.integers(1, STEPS))
def test_each_step_begins_near_its_instant(slow_start: float, step: int) -> None:
    at = step_at(NOW, step, slow_start)
    assert ramp_step(NOW, at + slow_start * 1e-9 + 1e-6, slow_start) >= step
    assert ramp_step(NOW, at - slow_start * 1e-9 - 1e-6, slow_start) == step - 1


def test_no_ramp_without_a_start_or_with_slow_start_off() -> None:
    assert ramp_step(None, NOW, 300.0) == STEPS
    assert ramp_step(NOW, NOW, 0.0) == STEPS
    assert ramp_step(NOW, NOW - 5.0, 0.0) == STEPS  # a heartbeat behind the start, no ramp


def records_since(since: float | None, **obs: object) -> dict[str, object]:
    return {
        "new": replace(make_obs("new", quota=None), eligible_since=since),
        "old": replace(make_obs("old", quota=None), eligible_since=0.0),
    }


def test_a_recovered_member_takes_a_tenth_of_its_weight_then_all_of_it() -> None:
    config = make_config({"new": 10, "old": 10}, prime=None, slow_start=300)
    records = records_since(NOW - 45)
    early = evaluate(config, records, {}, CheckerHeartbeat("c", NOW), NOW)  # type: ignore[arg-type]
    member = early.member("new")
    assert member is not None
    assert member.ramp == ramp_factor(1) and member.eligible_since == NOW - 45
    assert {t.name: t.weight for t in early.targets} == {"new": 10 * ramp_factor(1), "old": 10}
    done = evaluate(config, records, {}, CheckerHeartbeat("c", NOW + 255), NOW + 255)  # type: ignore[arg-type]
    assert {t.name: t.weight for t in done.targets} == {"new": 10, "old": 10}
    assert done.member("new").ramp is None  # type: ignore[union-attr]


def test_an_excluded_member_does_not_ramp() -> None:
    config = make_config({"new": 10, "old": 10}, prime=None)
    records = records_since(NOW - 45)
    records["new"] = replace(records["new"], health=None)  # type: ignore[type-var]
    view = evaluate(config, records, {}, CheckerHeartbeat("c", NOW), NOW)  # type: ignore[arg-type]
    member = view.member("new")
    assert member is not None and not member.eligible
    assert (member.ramp, member.effective_weight) == (None, 0.0)


def test_every_step_of_a_ramp_is_a_deadline_of_the_view() -> None:
    """A router re-evaluates at each step (and only then): the weights between two
    deadlines are the weights at the first."""
    forever = {"record_max_age": 1e6, "versions": {"max_age": 1e6}}  # only the ramp moves
    config = make_config({"new": 10, "old": 10}, prime=None, slow_start=300, **forever)
    records = records_since(NOW)
    as_of, weights = NOW, []
    while as_of <= NOW + 300:  # the ramp's deadlines (the records' own come far later)
        view = evaluate(config, records, {}, CheckerHeartbeat("c", as_of), as_of)  # type: ignore[arg-type]
        weights.append(view.targets[0].weight)
        deadline = next_deadline(config, records, as_of)  # type: ignore[arg-type]
        if deadline <= NOW + 300:
            just_before = math.nextafter(deadline, -math.inf)
            same = evaluate(config, records, {}, CheckerHeartbeat("c", just_before), just_before)  # type: ignore[arg-type]
            assert same.targets[0].weight == weights[-1]
        as_of = deadline
    # one deadline a change of the factor: none for the floor's steps
    assert weights == [10 * ramp_factor(step) for step in (0, *range(4, STEPS + 1))]
