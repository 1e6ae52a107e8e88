"""When a member is checked next (shared/schedule.py): rounds every period, /health alone
every fast interval while a member is falling, and how long a check may retry."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import CheckConfig
from shared.observe import HealthStreak, next_observation
from shared.records import HealthObservation, MemberObservation
from shared.schedule import NextCheck, is_falling, next_check, retry_window

T0 = 1_700_000_000.0


def check(**settings: Any) -> CheckConfig:
    return CheckConfig(**{"period": 15.0, "fast_interval": 2.0, **settings})


def answer(good: bool, now: float = T0) -> HealthObservation:
    return HealthObservation("ok", (), 10, 100, now) if good else health("unhealthy", now)


def health(status: str, now: float = T0) -> HealthObservation:
    return HealthObservation(status, () if status == "ok" else ("refused",), observed_at=now)  # type: ignore[arg-type]


def record(status: str | None) -> MemberObservation:
    return MemberObservation("m", T0, health=None if status is None else health(status))


# --- is_falling ------------------------------------------------------------------------


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
    assert is_falling(record(status), HealthStreak(count)) is falling


def test_a_member_never_checked_is_not_falling() -> None:
    assert is_falling(None, HealthStreak(-1)) is False


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
        assert is_falling(obs, streak) is expected, (answers[: i + 1], rise, fall)


# --- next_check ------------------------------------------------------------------------


def test_a_member_that_is_not_falling_waits_for_its_round() -> None:
    assert next_check(check(), 100.0, 115.0, falling=False) == NextCheck(115.0, "round")


def test_a_falling_member_is_checked_again_a_fast_interval_after_the_check_started() -> None:
    assert next_check(check(), 100.0, 115.0, falling=True) == NextCheck(102.0, "health")


def test_a_round_due_before_the_fast_check_is_the_next_check() -> None:
    # the round reads /health too: no /health of its own just before it
    assert next_check(check(), 114.0, 115.0, falling=True) == NextCheck(115.0, "round")
    assert next_check(check(), 113.0, 115.0, falling=True) == NextCheck(115.0, "round")
    assert next_check(check(), 112.9, 115.0, falling=True) == NextCheck(114.9, "health")


def test_a_fast_interval_as_long_as_the_period_changes_nothing() -> None:
    config = check(fast_interval=15.0)
    assert next_check(config, 100.0, 115.0, falling=True) == NextCheck(115.0, "round")


@settings(max_examples=300, deadline=None)
@given(
    started=st.floats(0, 1e6),
    until_round=st.floats(0.01, 600),
    fast=st.floats(0.01, 600),
    falling=st.booleans(),
)
def test_the_next_check_is_never_after_the_round_nor_sooner_than_a_fast_interval(
    started: float, until_round: float, fast: float, falling: bool
) -> None:
    round_at = started + until_round
    upcoming = next_check(check(fast_interval=fast), started, round_at, falling)
    assert upcoming.at <= round_at
    assert (upcoming.kind == "round") is (upcoming.at == round_at)
    if upcoming.kind == "health":
        assert falling and upcoming.at == started + fast
    else:
        assert not falling or started + fast >= round_at


# --- retry_window ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "settings", "window"),
    [
        ("ok", {}, 2.0),  # a failure is checked again in 2 s: retries end by then
        ("ok", {"fast_interval": 30.0}, 15.0),  # never past the round
        ("ok", {"fall": 1}, 15.0),  # one failure excludes it: no fast checks follow
        ("ok", {"fall": 3}, 2.0),
        ("unhealthy", {}, 15.0),  # failing: its next check is a round
        ("unreachable", {}, 15.0),
        (None, {}, 15.0),  # no verdict yet: its first answer counts at once
    ],
)
def test_a_check_retries_until_the_members_next_check_could_be_due(
    status: str | None, settings: dict[str, Any], window: float
) -> None:
    assert retry_window(check(**settings), record(status)) == window


def test_a_member_never_checked_retries_within_a_period() -> None:
    assert retry_window(check(), None) == 15.0


# --- the schedule over time, as the checker's loop follows it ---------------------------


def timeline(
    config: CheckConfig, answers: list[bool], durations: list[float]
) -> list[tuple[float, str, str | None]]:
    """(start, kind, verdict after it) of each check of a member giving ``answers`` in
    turn, each check lasting its duration; rounds every period, start to start, the next
    check starting when both due and the one before has ended (checker.service)."""
    obs: MemberObservation | None = None
    streak = HealthStreak()
    at, kind, round_at = 0.0, "round", 0.0
    seen = []
    for good, duration in zip(answers, durations, strict=True):
        if kind == "round":
            round_at = at + config.period
        obs, streak = next_observation(
            obs, "m", at + duration, health=answer(good), versions=None, versions_error=None,
            streak=streak, rise=config.rise, fall=config.fall,
        )  # fmt: skip
        assert obs.health is not None
        seen.append((at, kind, obs.health.status))
        upcoming = next_check(config, at, round_at, is_falling(obs, streak))
        at, kind = max(upcoming.at, at + duration), upcoming.kind
    return seen


@settings(max_examples=200, deadline=None)
@given(
    healthy=st.integers(1, 6),
    fall=st.integers(1, 5),
    fast=st.floats(0.5, 30),
    durations=st.lists(st.floats(0, 2), min_size=16, max_size=16),
)
def test_a_member_that_turns_bad_is_excluded_fall_checks_later_each_a_fast_interval_apart(
    healthy: int, fall: int, fast: float, durations: list[float]
) -> None:
    config = check(fall=fall, fast_interval=fast, timeout=2.0)
    answers = [True] * healthy + [False] * (16 - healthy)
    seen = timeline(config, answers, durations)
    # while healthy: one check a round, a period apart
    assert all(kind == "round" for _, kind, _ in seen[: healthy + 1])
    assert [at for at, _, _ in seen[: healthy + 1]] == [15.0 * i for i in range(healthy + 1)]
    excluded = next(i for i, (_, _, verdict) in enumerate(seen) if verdict != "ok")
    assert excluded == healthy + fall - 1  # the fall-th bad answer in a row
    # each check after a failure starts a fast interval after the one before, or as soon as
    # that one has ended (2 s at most), never later
    falling = [at for at, _, _ in seen[healthy : excluded + 1]]
    assert all(b - a <= max(fast, 2.0) + 1e-6 for a, b in pairwise(falling))
    # excluded: back to rounds only
    assert all(kind == "round" for _, kind, _ in seen[excluded + 1 :])


@settings(max_examples=200, deadline=None)
@given(fall=st.integers(2, 5), failures=st.integers(1, 4), fast=st.floats(0.5, 7))
def test_a_member_that_fails_and_passes_again_goes_back_to_its_rounds(
    fall: int, failures: int, fast: float
) -> None:
    failures = min(failures, fall - 1)  # fewer than fall: never excluded
    config = check(fall=fall, fast_interval=fast)
    answers = [True, *([False] * failures), *([True] * 6)]
    seen = timeline(config, answers, [0.1] * len(answers))
    assert all(verdict == "ok" for _, _, verdict in seen)
    kinds = [kind for _, kind, _ in seen]
    passed = 1 + failures  # the check that passed again
    assert kinds[passed + 1 :] == ["round"] * (len(answers) - passed - 1)
    # the rounds keep their period, late by one check at most (one that was still running)
    rounds = [at for at, kind, _ in seen if kind == "round"]
    assert all(15.0 - 1e-6 <= b - a <= 15.1 + 1e-6 for a, b in pairwise(rounds))
