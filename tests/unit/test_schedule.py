"""When a member is checked next (shared/schedule.py): rounds every period with /versions
alone midway between them, /health alone every fast interval while a member is falling or
at once after a /versions that reached nobody, and how long a check may retry."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import schedule
from shared.config import CheckConfig
from shared.observe import HealthStreak, health_failure, health_is_failing, next_observation
from shared.records import HealthObservation, MemberObservation
from shared.schedule import CheckKind, NextCheck, Plan

T0 = 1_700_000_000.0


def check(**settings: Any) -> CheckConfig:
    return CheckConfig(**{"period": 15.0, "fast_interval": 2.0, **settings})


def answer(good: bool, now: float = T0) -> HealthObservation:
    return HealthObservation("ok", (), 10, 100, now) if good else health("unhealthy", now)


def health(status: str, now: float = T0) -> HealthObservation:
    return HealthObservation(status, () if status == "ok" else ("refused",), observed_at=now)  # type: ignore[arg-type]


def record(status: str | None) -> MemberObservation:
    return MemberObservation("m", T0, health=None if status is None else health(status))


# --- is_falling ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "count", "falling"),
    [
        ("ok", -1, True),  # one failure below fall: the next ones decide
        ("ok", -5, True),
        ("ok", 0, False),  # no answer counted yet
        ("ok", 1, False),  # passing
        ("unhealthy", -1, False),  # excluded already: failed_period's schedule
        ("unreachable", -3, False),
        ("unhealthy", 1, False),  # rising: checked every period
        (None, -1, False),  # /health never answered
    ],
)
def test_falling_is_a_healthy_verdict_with_its_latest_answers_bad(
    status: str | None, count: int, falling: bool
) -> None:
    assert schedule.is_falling(record(status), HealthStreak(count)) is falling


def test_a_member_never_checked_is_not_falling() -> None:
    assert schedule.is_falling(None, HealthStreak(-1)) is False


@settings(max_examples=300, deadline=None)
@given(
    answers=st.lists(st.booleans(), min_size=1, max_size=30),
    rise=st.integers(1, 5),
    fall=st.integers(1, 5),
)
def test_a_member_is_falling_exactly_while_fewer_than_fall_failures_keep_it_healthy(
    answers: list[bool], rise: int, fall: int
) -> None:
    obs: MemberObservation | None = None
    streak = HealthStreak()
    failures = 0  # in a row, since the verdict was last ok
    for i, good in enumerate(answers):
        was_ok = obs is not None and obs.health is not None and obs.health.status == "ok"
        failures = 0 if good else failures + 1
        now = T0 + 10 * i
        obs, streak = next_observation(
            obs, "m", now, health=answer(good, now), versions=None, versions_error=None,
            streak=streak, rise=rise, fall=fall,
        )  # fmt: skip
        expected = was_ok and not good and failures < fall
        assert schedule.is_falling(obs, streak) is expected, (answers[: i + 1], rise, fall)


# --- round_plan, brings_health_forward, after_check, next_check ---------------------------


def test_a_round_plans_its_versions_half_round_midway_to_the_next_round() -> None:
    assert schedule.round_plan(100.0, 116.0) == Plan(116.0, versions_at=108.0)


def test_each_kind_reads_health_or_versions_and_only_the_first_check_reads_both() -> None:
    assert {k for k, reads in schedule.READS.items() if "health" in reads} == {
        "whole",
        "round",
        "health",
    }
    assert {k for k, reads in schedule.READS.items() if "versions" in reads} == {
        "whole",
        "versions",
    }
    assert {k for k, reads in schedule.READS.items() if "metrics" in reads} == {"whole", "round"}


@pytest.mark.parametrize(
    ("status", "unreached", "forward"),
    [
        ("ok", True, True),  # refused, reset, timed out: it may be gone
        ("ok", False, False),  # an answer, even a 404 or invalid JSON: it is there
        ("unhealthy", True, False),  # excluded already: waits failed_period
        ("unreachable", True, False),
        (None, True, False),  # no verdict: nothing to bring forward for
    ],
)
def test_only_a_versions_fetch_that_reached_nobody_brings_a_healthy_members_health_forward(
    status: str | None, unreached: bool, forward: bool
) -> None:
    assert schedule.brings_health_forward(record(status), unreached) is forward


def test_a_member_never_checked_has_no_health_to_bring_forward() -> None:
    assert schedule.brings_health_forward(None, True) is False


HALF = Plan(115.0, versions_at=107.5)  # the plan a round at 100 sets


@pytest.mark.parametrize(
    ("kind", "started", "falling", "health_now", "after"),
    [
        ("round", 100.0, False, False, HALF),  # healthy: the half-round, then the round
        ("round", 100.0, True, False, Plan(115.0, 107.5, 102.0)),  # failed: fast check
        ("health", 102.0, True, False, Plan(115.0, 107.5, 104.0)),  # failed again
        ("health", 102.0, False, False, HALF),  # passed (or excluded): no fast check
        ("round", 113.5, True, False, HALF),  # the round reads /health: none of its own
        ("health", 113.0, True, False, HALF),  # a fast check due with the round is the round
        ("versions", 107.5, False, False, Plan(115.0)),  # read: the round comes next
        ("versions", 107.5, False, True, Plan(115.0, None, 107.5)),  # nobody: /health now
        ("health", 107.5, True, False, Plan(115.0, 107.5, 109.5)),  # brought forward, failed
    ],
)
def test_after_a_check_the_plan_holds_what_it_leaves_due(
    kind: CheckKind, started: float, falling: bool, health_now: bool, after: Plan
) -> None:
    assert (
        schedule.after_check(check(), HALF, kind, started, falling=falling, health_now=health_now)
        == after
    )


def test_a_versions_half_round_of_a_falling_member_leaves_its_fast_check_where_it_was() -> None:
    falling = Plan(115.0, 107.5, 108.0)
    assert schedule.after_check(check(), falling, "versions", 107.5, falling=True) == Plan(
        115.0, None, 108.0
    )
    # nobody answered /versions: its /health comes at once instead of half a second later
    forward = schedule.after_check(
        check(), falling, "versions", 107.5, falling=True, health_now=True
    )
    assert forward == Plan(115.0, None, 107.5)


@pytest.mark.parametrize(
    ("plan", "upcoming"),
    [
        (Plan(115.0), NextCheck(115.0, "round")),
        (Plan(115.0, 107.5), NextCheck(107.5, "versions")),
        (Plan(115.0, 107.5, 102.0), NextCheck(102.0, "health")),
        (Plan(115.0, 107.5, 109.0), NextCheck(107.5, "versions")),
        (Plan(115.0, 107.5, 107.5), NextCheck(107.5, "health")),  # the verdict first
    ],
)
def test_the_next_check_is_the_earliest_the_plan_holds(plan: Plan, upcoming: NextCheck) -> None:
    assert schedule.next_check(plan) == upcoming


@settings(max_examples=300, deadline=None)
@given(
    started=st.floats(0, 1e6),
    until_round=st.floats(0.01, 600),
    fast=st.floats(0.01, 600),
    kind=st.sampled_from(["round", "versions", "health"]),
    versions_due=st.booleans(),
    falling=st.booleans(),
    health_now=st.booleans(),
)
def test_the_next_check_is_never_after_the_round_and_reads_health_within_a_fast_interval(
    started: float,
    until_round: float,
    fast: float,
    kind: CheckKind,
    versions_due: bool,
    falling: bool,
    health_now: bool,
) -> None:
    round_at = started + until_round
    plan = Plan(round_at, round_at - until_round / 2 if versions_due else None)
    after = schedule.after_check(
        check(fast_interval=fast), plan, kind, started, falling=falling, health_now=health_now
    )
    upcoming = schedule.next_check(after)
    assert upcoming.at <= round_at
    assert (upcoming.kind == "round") is (upcoming.at == round_at)
    # a falling member's /health is read again within a fast interval: alone, or in the round
    health_at = round_at if after.health_at is None else after.health_at
    if falling and "health" in schedule.READS[kind]:
        assert health_at <= started + fast
    if kind == "versions" and health_now:
        assert upcoming == NextCheck(started, "health")
    if not falling and not (kind == "versions" and health_now):
        assert after.health_at == (plan.health_at if kind == "versions" else None)


# --- retry_window -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "settings", "window"),
    [
        ("ok", {}, 2.0),  # a failure is checked again in 2 s: retries end by then
        ("ok", {"fast_interval": 30.0}, 7.5),  # never past the next (half-)round
        ("ok", {"fall": 1}, 7.5),  # one failure excludes it: no fast checks follow
        ("ok", {"fall": 3}, 2.0),
        ("unhealthy", {}, 7.5),  # failing: its next check is half a period away at most
        ("unreachable", {}, 7.5),
        (None, {}, 7.5),  # no verdict yet: its first answer counts at once
    ],
)
def test_a_check_retries_until_the_members_next_check_could_be_due(
    status: str | None, settings: dict[str, Any], window: float
) -> None:
    assert schedule.retry_window(check(**settings), record(status)) == window


def test_a_members_first_check_retries_within_a_period_the_round_after_it_is_that_far() -> None:
    assert schedule.retry_window(check(), None) == 15.0


# --- the schedule over time, as the checker's loop follows it -----------------------------


@dataclass(frozen=True)
class Member:
    """A member's server: up until ``killed_at`` (refused from then), its /health answering
    ok until ``sick_at`` (503 from then) and again from ``well_at``."""

    killed_at: float = math.inf
    sick_at: float = math.inf
    well_at: float = math.inf

    def health(self, at: float, now: float) -> HealthObservation:
        if at >= self.killed_at:
            return health_failure("connection refused", True, now)
        return answer(not self.sick_at <= at < self.well_at, now)


@dataclass(frozen=True)
class Seen:
    at: float
    kind: CheckKind
    reads: frozenset[str]  # what it read (/health not while it waits failed_period)
    verdict: str | None  # after it


def timeline(
    config: CheckConfig,
    member: Member,
    end: float,
    jitters: list[float] | None = None,
    duration: float = 0.0,
) -> list[Seen]:
    """Each check of ``member`` that starts before ``end``, each lasting ``duration``, as
    checker.service's loop runs them: rounds ``period x (1 + jitter x draw)`` apart, start to
    start (the draws in turn), the next check starting when due and the one before has ended,
    /health read only once ``failed_period`` has passed after a failing answer."""
    obs: MemberObservation | None = None
    streak, next_health, draws = HealthStreak(), 0.0, itertools.cycle(jitters or [0.0])
    at, seen = 0.0, []
    kind: CheckKind = "whole"
    while at < end:
        if kind in ("whole", "round"):
            plan = schedule.round_plan(at, at + config.period * (1 + config.jitter * next(draws)))
        reads = schedule.READS[kind] - {"metrics"} - ({"health"} if at < next_health else set())
        now, up = at + duration, at < member.killed_at
        obs, streak = next_observation(
            obs, "m", now, streak=streak, rise=config.rise, fall=config.fall,
            health=member.health(at, now) if "health" in reads else None,
            versions={"binderhub": "1"} if "versions" in reads and up else None,
            versions_error="refused" if "versions" in reads and not up else None,
        )  # fmt: skip
        if "health" in reads:
            next_health = now + config.failed_period * health_is_failing(obs, streak)
        assert obs.health is not None
        seen.append(Seen(at, kind, frozenset(reads), obs.health.status))
        health_now = schedule.brings_health_forward(obs, "versions" in reads and not up)
        falling = schedule.is_falling(obs, streak)
        plan = schedule.after_check(config, plan, kind, at, falling=falling, health_now=health_now)
        upcoming = schedule.next_check(plan)
        at, kind = max(upcoming.at, now), upcoming.kind
    return seen


def reads_of(seen: list[Seen], endpoint: str) -> list[float]:
    return [s.at for s in seen if endpoint in s.reads]


def rounds(seen: list[Seen]) -> list[float]:
    return [s.at for s in seen if s.kind in ("whole", "round")]


schedules = st.fixed_dictionaries(
    {
        "period": st.floats(1, 100),
        "jitter": st.floats(0, 0.5),
        "fast_interval": st.floats(0.1, 50),
        "fall": st.integers(1, 5),
        "failed_period": st.floats(1, 300),
    }
).map(lambda settings: check(**settings))


def gone_wrong(
    config: CheckConfig, jitters: list[float], **wrong_at: float
) -> tuple[float, list[Seen], Seen]:
    """When a member went wrong (``killed_at`` or ``sick_at``, given in periods), its checks
    until 10 periods later, and its first check with a verdict other than ok."""
    ((how, periods),) = wrong_at.items()
    at = periods * config.period
    seen = timeline(config, Member(**{how: at}), at + 10 * config.period, jitters)
    return at, seen, next(s for s in seen if s.verdict != "ok")


draws = st.lists(st.floats(-1, 1), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(config=schedules, jitters=draws)
def test_a_healthy_member_gets_one_health_and_one_versions_a_period_half_a_period_apart(
    config: CheckConfig, jitters: list[float]
) -> None:
    seen = timeline(config, Member(), 20 * config.period, jitters)
    assert seen[0].reads == {"health", "versions"}  # the first check: all at once
    starts = [s.at for s in seen]
    assert starts == sorted(set(starts))  # never two checks at once
    assert all(s.kind == ("versions", "round")[i % 2] for i, s in enumerate(seen[1:]))
    # from the first round on, exactly one /health (the round's) and one /versions, midway,
    # from one round to the next
    for a, b in pairwise(rounds(seen)[1:]):
        assert len([t for t in reads_of(seen, "health") if a <= t < b]) == 1
        versions = [t for t in reads_of(seen, "versions") if a <= t < b]
        assert versions == [pytest.approx((a + b) / 2)]
    assert all(s.verdict == "ok" for s in seen)


@settings(max_examples=300, deadline=None)
@given(
    config=schedules,
    jitters=draws,
    killed_at=st.floats(0.001, 5),  # in periods
)
def test_a_killed_member_is_excluded_within_half_a_period_and_fall_minus_one_fast_intervals(
    config: CheckConfig, jitters: list[float], killed_at: float
) -> None:
    killed, seen, excluded = gone_wrong(config, jitters, killed_at=killed_at)
    bound = config.period / 2 * (1 + config.jitter) + (config.fall - 1) * config.fast_interval
    assert excluded.at <= killed + bound * (1 + 1e-9)
    assert excluded.verdict == "unreachable"
    # each /health after the kill comes a fast interval after the one before at most
    failing = [t for t in reads_of(seen, "health") if killed <= t <= excluded.at]
    assert len(failing) == config.fall
    assert all(b - a <= config.fast_interval * (1 + 1e-9) for a, b in pairwise(failing))
    # excluded: /versions every period still, /health once failed_period has passed, and no
    # /health brought forward (extra requests only while its verdict is ok)
    after = [s for s in seen if s.at > excluded.at]
    assert all(s.kind != "health" for s in after)
    later = [t for t in rounds(seen) if t > excluded.at]
    for a, b in pairwise(later):
        assert len([t for t in reads_of(seen, "versions") if a <= t < b]) == 1
    health = reads_of(after, "health")
    gaps = [b - a for a, b in pairwise([excluded.at, *health])]
    assert all(gap >= config.failed_period * (1 - 1e-9) for gap in gaps), gaps


@settings(max_examples=200, deadline=None)
@given(config=schedules, jitters=draws, sick_at=st.floats(0.001, 5))  # in periods
def test_a_member_whose_health_fails_gets_fast_checks_and_its_versions_bring_nothing_forward(
    config: CheckConfig, jitters: list[float], sick_at: float
) -> None:
    sick, seen, excluded = gone_wrong(config, jitters, sick_at=sick_at)
    assert excluded.verdict == "unhealthy"
    failing = [t for t in reads_of(seen, "health") if sick <= t <= excluded.at]
    assert len(failing) == config.fall  # the fall-th bad answer in a row excludes it
    # each a fast interval after the one before, or in the round when that comes sooner
    for a, b in pairwise(failing):
        next_round = min(t for t in rounds(seen) if t > a)
        assert b == pytest.approx(min(a + config.fast_interval, next_round))
    # its /versions answered: never a /health at once after it
    for before, after in pairwise(seen):
        assert not (before.kind == "versions" and after.at == before.at)


@settings(max_examples=200, deadline=None)
@given(
    fall=st.integers(2, 5),
    failures=st.integers(1, 4),
    fast=st.floats(0.5, 3),  # its fast checks all before the half-round's round
    duration=st.floats(0, 0.4),
)
def test_a_member_that_fails_and_passes_again_goes_back_to_its_rounds_and_half_rounds(
    fall: int, failures: int, fast: float, duration: float
) -> None:
    failures = min(failures, fall - 1)  # fewer than fall: never excluded
    config = check(fall=fall, fast_interval=fast, jitter=0.0)
    # sick from just after the round at 15 until just before its last fast check
    member = Member(sick_at=14.9, well_at=15.0 + (failures - 1) * fast + 0.05)
    seen = timeline(config, member, 120.0, duration=duration)
    assert all(s.verdict == "ok" for s in seen)
    fast_checks = [s.at for s in seen if s.kind == "health"]
    assert 1 <= len(fast_checks) <= failures
    # after them, rounds and half-rounds only, as before: rounds a period apart, start to start
    assert [s.kind for s in seen if s.at > 40] == ["round", "versions"] * 5
    assert all(b - a == pytest.approx(15.0) for a, b in pairwise(rounds(seen)))
