"""Flap damping with ``rise`` and ``fall`` above 1: the verdict, its numbers, and when the
checker waits ``failed_period`` before the next /health (``health_is_failing``)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.observe import HealthStreak, health_failure, health_is_failing, next_observation
from shared.records import HealthObservation, MemberObservation

T0 = 1_700_000_000.0


def ok(now: float, pods: int = 10) -> HealthObservation:
    return HealthObservation("ok", (), pods, 100, now)


def bad(now: float, why: str = "check failed: JupyterHub API") -> HealthObservation:
    return HealthObservation("unhealthy", (why,), None, None, now)


Held = tuple[MemberObservation, HealthStreak]  # what the checker holds of a member


def fold(answers: list[HealthObservation], rise: int, fall: int) -> list[Held]:
    """The record and streak after each answer, one a period."""
    held: list[Held] = []
    obs, streak = None, HealthStreak()
    for answer in answers:
        obs, streak = next_observation(
            obs, "m", answer.observed_at, health=answer, versions=None, versions_error=None,
            streak=streak, rise=rise, fall=fall,
        )  # fmt: skip
        held.append((obs, streak))
    return held


def verdicts(held: list[Held]) -> list[str | None]:
    return [r.health.status if r.health else None for r, _ in held]


def failing(held: list[Held]) -> list[bool]:
    return [health_is_failing(r, s) for r, s in held]


def test_a_failing_member_that_answers_well_again_is_rechecked_every_period() -> None:
    # rise 3: the verdict stays bad for two good answers, but the checker must not wait
    # failed_period to see the third, or recovery would take 2 x failed_period
    held = fold([bad(T0), bad(T0 + 10), ok(T0 + 20), ok(T0 + 30), ok(T0 + 40)], 3, 2)
    assert verdicts(held) == ["unhealthy", "unhealthy", "unhealthy", "unhealthy", "ok"]
    assert failing(held) == [True, True, False, False, False]


def test_a_healthy_member_about_to_fall_is_not_failing_yet() -> None:
    # fall 3: two bad answers keep the ok verdict; only the third makes the member failing
    held = fold([ok(T0), bad(T0 + 10), bad(T0 + 20), bad(T0 + 30)], 2, 3)
    assert verdicts(held) == ["ok", "ok", "ok", "unhealthy"]
    assert failing(held) == [False, False, False, True]


def test_an_unreachable_member_is_failing_like_an_unhealthy_one() -> None:
    down = health_failure("connect timeout", transport=True, now=T0 + 10)
    held = fold([ok(T0), down, down], 1, 2)
    assert failing(held) == [False, False, True]
    assert verdicts(held)[-1] == "unreachable"


def test_an_ok_verdict_takes_the_numbers_of_every_new_good_answer() -> None:
    # a good answer after a bad one (streak 1 < rise 2) while the verdict is still ok:
    # the verdict is refreshed, so fullness follows the latest pod count
    records = [r for r, _ in fold([ok(T0, pods=10), bad(T0 + 10), ok(T0 + 20, pods=95)], 2, 2)]
    assert records[-1].health == ok(T0 + 20, pods=95)
    assert records[1].health == ok(T0, pods=10)  # the bad answer alone changed nothing


def test_a_bad_verdict_takes_the_reasons_of_every_new_bad_answer() -> None:
    # a bad answer after a good one (streak -1 < fall 2) while the verdict is still bad:
    # the reasons shown are the latest, not those of the answer that made it fall
    answers = [bad(T0, "check failed: Docker registry"), ok(T0 + 10), bad(T0 + 20)]
    records = [r for r, _ in fold(answers, 2, 2)]
    assert records[1].health == answers[0]  # one good answer does not rise with rise 2
    assert records[-1].health == answers[2]
    assert records[-1].last_error == "health: check failed: JupyterHub API"


def test_a_member_without_any_health_answer_is_not_failing() -> None:
    only_versions, streak = next_observation(
        None, "m", T0, health=None, versions={"binderhub": "1"}, versions_error=None
    )
    assert only_versions.health is None and streak == HealthStreak()
    assert not health_is_failing(only_versions, streak)


def test_a_bad_verdict_without_an_answer_of_its_own_is_failing() -> None:
    # a record this checker did not build (no streak): its verdict alone decides
    assert health_is_failing(MemberObservation("m", T0, bad(T0)), HealthStreak())
    assert not health_is_failing(MemberObservation("m", T0, ok(T0)), HealthStreak())


@settings(max_examples=100, deadline=None)
@given(
    answers=st.lists(st.booleans(), min_size=1, max_size=30),
    rise=st.integers(1, 4),
    fall=st.integers(1, 4),
)
def test_failing_exactly_when_the_verdict_and_the_latest_answer_are_both_bad(
    answers: list[bool], rise: int, fall: int
) -> None:
    held = fold(
        [ok(T0 + 10 * i) if good else bad(T0 + 10 * i) for i, good in enumerate(answers)],
        rise,
        fall,
    )
    for good, (record, streak) in zip(answers, held, strict=True):
        assert record.health is not None
        assert health_is_failing(record, streak) == (record.health.status != "ok" and not good)
