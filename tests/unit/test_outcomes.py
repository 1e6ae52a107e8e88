"""Launch outcomes (shared.outcomes): BinderHub's counts read from /metrics text, their
increase over a sliding window, and the ejection of members failing their launches."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import OutcomesConfig
from shared.outcomes import (
    LaunchTotals,
    Reading,
    Sample,
    WindowCounts,
    carried_on,
    counting_start,
    ejection_cap,
    ejection_reason,
    ejection_time,
    ejections_in_a_row,
    increase,
    is_ejected,
    judge,
    judge_read,
    launch_totals,
    qualifies,
    slide,
    window_counts,
)
from shared.records import LaunchOutcomes, MemberObservation
from shared.rules import failing_reason
from tests.support.builders import make_config
from tests.support.launches import BinderHubLaunches

T0 = 1_700_000_000.0
DEFAULTS = OutcomesConfig()  # window 60, ratio 0.25, min 10, 30 s to 300 s, share 0.34
THREE = make_config()  # alpha, beta, gamma
MINUTE = make_config(outcomes={"window": 60})


def counts(launches: int, failures: int, span: float = 60.0, at: float = T0) -> WindowCounts:
    return WindowCounts(launches, failures, span, at)


def outcomes(
    until: float | None = None, ejections: int = 0, reason: str | None = "x"
) -> LaunchOutcomes:
    return LaunchOutcomes(
        20, 10, 60.0, T0 - 5, ejected_until=until, ejection_reason=reason, ejections=ejections
    )


# --- reading BinderHub's /metrics -----------------------------------------------------------


def test_the_counts_of_binderhubs_histogram_by_status() -> None:
    member = BinderHubLaunches()
    member.launches(successes=5, failures=2)
    member.launch(True, retries=2)  # two retry observations, then one success
    member.launch(False, retries=1)  # a retry, then the failure
    member.refuse("pod_quota")
    member.refuse("repo_quota")
    assert launch_totals(member.text()) == LaunchTotals(launches=9, failures=3)


def test_no_launch_yet_is_nothing_counted() -> None:
    assert launch_totals(BinderHubLaunches().text()) == LaunchTotals(0, 0)
    assert launch_totals("") == LaunchTotals(0, 0)
    assert launch_totals("# HELP x y\nprocess_cpu_seconds_total 12.5\n") == LaunchTotals(0, 0)


def test_counts_are_summed_over_the_other_labels_and_read_untyped() -> None:
    text = (
        'binderhub_launch_time_seconds_count{status="success",retries="0"} 7\n'
        'binderhub_launch_time_seconds_count{status="success",retries="1"} 2\n'
        'binderhub_launch_time_seconds_count{status="failure",retries="-1"} 4\n'
        'binderhub_launch_time_seconds_count{status="retry",retries="-1"} 40\n'
        'binderhub_launch_time_seconds_count{retries="0"} 100\n'
        'binderhub_launch_time_seconds_sum{status="failure",retries="-1"} 400\n'
        'binderhub_launch_count_total{status="failure",provider="GitHub",repo="r"} 50\n'
    )
    assert launch_totals(text) == LaunchTotals(launches=13, failures=4)


def test_text_that_does_not_parse_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError) as raised:
        launch_totals("<html><body>Not Found</body></html>")
    assert str(raised.value).startswith("not in Prometheus's text format (")
    assert str(raised.value).endswith(")")
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize(
    ("value", "shown"), [("NaN", "nan"), ("+Inf", "inf"), ("-1", "-1"), ("2.5", "2.5")]
)
def test_a_count_that_is_no_count_is_refused(value: str, shown: str) -> None:
    text = f'binderhub_launch_time_seconds_count{{status="failure",retries="-1"}} {value}\n'
    with pytest.raises(ValueError) as raised:
        launch_totals(text)
    assert str(raised.value) == (
        f"binderhub_launch_time_seconds_count of status 'failure' is {shown}, not a count"
    )


def test_a_count_of_another_status_is_not_checked() -> None:
    text = 'binderhub_launch_time_seconds_count{status="retry",retries="-1"} NaN\n'
    assert launch_totals(text) == LaunchTotals(0, 0)


def test_a_zero_count_is_a_count() -> None:
    text = 'binderhub_launch_time_seconds_count{status="success",retries="0"} 0\n'
    assert launch_totals(text) == LaunchTotals(0, 0)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_gives_totals_or_a_value_error(text: str) -> None:
    try:
        totals = launch_totals(text)
    except ValueError:
        return
    assert 0 <= totals.failures <= totals.launches


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 3)) | st.sampled_from(["pod_quota", "x"]),
        max_size=30,
    )
)
def test_totals_count_every_launch_that_ended(events: list[tuple[bool, int] | str]) -> None:
    member = BinderHubLaunches()
    for event in events:
        if isinstance(event, str):
            member.refuse(event)
        else:
            member.launch(event[0], retries=event[1])
    ended = [e for e in events if not isinstance(e, str)]
    failed = [e for e in ended if not e[0]]
    assert launch_totals(member.text()) == LaunchTotals(len(ended), len(failed))


# --- the window -----------------------------------------------------------------------------


def test_a_count_that_goes_down_counted_again_from_zero() -> None:
    assert increase(LaunchTotals(10, 2), LaunchTotals(15, 3)) == LaunchTotals(5, 1)
    assert increase(LaunchTotals(10, 2), LaunchTotals(10, 2)) == LaunchTotals(0, 0)
    assert increase(LaunchTotals(10, 2), LaunchTotals(4, 1)) == LaunchTotals(4, 1)  # restart
    # failures went down while launches did not: a restart all the same
    assert increase(LaunchTotals(10, 5), LaunchTotals(12, 3)) == LaunchTotals(12, 3)
    # successes went down (8 -> 7) while failures grew: a restart too
    assert increase(LaunchTotals(10, 2), LaunchTotals(10, 3)) == LaunchTotals(10, 3)


TOTALS = st.builds(
    lambda successes, failures: LaunchTotals(successes + failures, failures),
    st.integers(0, 1000),
    st.integers(0, 1000),
)


@settings(max_examples=300, deadline=None)
@given(TOTALS, TOTALS)
def test_an_increase_is_never_negative_nor_more_failures_than_launches(
    before: LaunchTotals, after: LaunchTotals
) -> None:
    step = increase(before, after)
    assert 0 <= step.failures <= step.launches
    assert step.launches <= after.launches


def test_the_window_keeps_what_is_at_most_window_seconds_older() -> None:
    a, b, c = (Sample(T0 + t, LaunchTotals(t, 0)) for t in (0, 10, 20))
    assert slide((), a, 20) == (a,)
    assert slide((a, b), c, 20) == (a, b, c)  # exactly the window's length: kept
    assert slide((a, b), c, 19.5) == (b, c)
    assert slide((b, c), a, 20) == (a,)  # a clock gone back: the later ones go
    again = Sample(T0 + 20, LaunchTotals(30, 1))  # two reads in the same instant: both count
    assert slide((b, c), again, 20) == (b, c, again)


def test_window_counts_from_the_start_on() -> None:
    samples = [Sample(T0 + 10 * i, LaunchTotals(4 * i, i)) for i in range(4)]
    assert window_counts(samples, T0) == WindowCounts(12, 3, 30.0, T0 + 30)
    assert window_counts(samples, T0 + 10) == WindowCounts(8, 2, 20.0, T0 + 30)
    assert window_counts(samples, T0 + 9.9) == WindowCounts(8, 2, 20.0, T0 + 30)
    assert window_counts(samples, T0 + 30) == WindowCounts(0, 0, 0.0, T0 + 30)
    assert window_counts(samples, T0 + 31) is None
    assert window_counts([], T0) is None


def test_window_counts_across_a_restart() -> None:
    samples = [
        Sample(T0, LaunchTotals(100, 10)),
        Sample(T0 + 10, LaunchTotals(110, 15)),
        Sample(T0 + 20, LaunchTotals(3, 2)),  # restarted: 3 launches since
        Sample(T0 + 30, LaunchTotals(8, 2)),
    ]
    assert window_counts(samples, T0) == WindowCounts(18, 7, 30.0, T0 + 30)


@settings(max_examples=200, deadline=None)
@given(st.lists(TOTALS, min_size=1, max_size=12), st.floats(0, 120))
def test_window_counts_are_never_negative(totals: list[LaunchTotals], start: float) -> None:
    samples = [Sample(T0 + 10 * i, t) for i, t in enumerate(totals)]
    got = window_counts(samples, T0 + start)
    if got is None:
        assert start > 10 * (len(totals) - 1)
        return
    assert 0 <= got.failures <= got.launches
    assert got.observed_at == samples[-1].at
    assert 0 <= got.span <= 120


def test_the_window_starts_after_the_last_ejection_once_it_is_over() -> None:
    assert counting_start(MINUTE, None, T0) == T0 - 60
    assert counting_start(MINUTE, outcomes(until=None), T0) == T0 - 60
    assert counting_start(MINUTE, outcomes(until=T0 + 5), T0) == T0 - 60  # still ejected
    assert counting_start(MINUTE, outcomes(until=T0), T0) == T0  # it ends now
    assert counting_start(MINUTE, outcomes(until=T0 - 20), T0) == T0 - 20
    assert counting_start(MINUTE, outcomes(until=T0 - 60), T0) == T0 - 60
    assert counting_start(MINUTE, outcomes(until=T0 - 90), T0) == T0 - 60


# --- the rules of ejection ------------------------------------------------------------------


def test_qualifies_above_the_ratio_with_enough_launches() -> None:
    assert qualifies(DEFAULTS, counts(10, 3))
    assert not qualifies(DEFAULTS, counts(9, 9))  # below min_launches
    assert not qualifies(DEFAULTS, counts(20, 5))  # 25 % is not above 25 %
    assert qualifies(DEFAULTS, counts(20, 6))
    assert not qualifies(DEFAULTS, counts(0, 0))
    assert not qualifies(DEFAULTS, None)


@pytest.mark.parametrize(
    ("members", "share", "cap"),
    [
        (1, 0.34, 0),  # never all: one member is never ejected
        (2, 0.34, 1),
        (3, 0.34, 1),
        (3, 0.67, 2),
        (3, 1.0, 2),  # never all
        (10, 0.34, 3),
        (10, 0.0, 1),  # at least one, as Envoy
        (100, 0.29, 29),  # 0.29 x 100 is 28.999... in floating point
        (100, 0.289999999998, 28),
        (3, 0.1 + 0.2 + 0.04, 1),  # 0.34000000000000002 x 3: 1.02
        (100, 0.34, 34),
    ],
)
def test_the_ejection_cap(members: int, share: float, cap: int) -> None:
    assert ejection_cap(OutcomesConfig(max_ejected_share=share), members) == cap


def test_ejections_last_longer_in_a_row_up_to_the_maximum() -> None:
    assert [ejection_time(DEFAULTS, n) for n in range(1, 13)] == [
        30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300
    ]  # fmt: skip


def test_ejections_in_a_row_go_back_to_zero_after_max_ejection_without_one() -> None:
    assert ejections_in_a_row(DEFAULTS, None, T0) == 0
    assert ejections_in_a_row(DEFAULTS, outcomes(None, ejections=3), T0) == 0
    assert ejections_in_a_row(DEFAULTS, outcomes(T0 + 10, ejections=3), T0) == 3
    assert ejections_in_a_row(DEFAULTS, outcomes(T0 - 299.5, ejections=3), T0) == 3
    assert ejections_in_a_row(DEFAULTS, outcomes(T0 - 300, ejections=3), T0) == 0


def test_is_ejected_until_the_end_as_the_failing_rule() -> None:
    for until in (None, T0 - 1, T0, T0 + 1):
        record = outcomes(until)
        obs = MemberObservation("m", T0, outcomes=record)
        assert is_ejected(record, T0) == (failing_reason(obs, T0) is not None)
    assert not is_ejected(None, T0)
    assert is_ejected(outcomes(T0 + 0.001), T0)


def test_the_reason_quotes_the_numbers() -> None:
    assert ejection_reason(DEFAULTS, counts(20, 12, span=57.25), 30.0, 1) == (
        "launches failing: 12 of 20 failed in the last 57.2s (60% > 25%); "
        "ejected for 30s, ejection 1 in a row"
    )
    assert ejection_reason(OutcomesConfig(max_failure_ratio=0.125), counts(3, 1, 9), 7.5, 4) == (
        "launches failing: 1 of 3 failed in the last 9s (33.3% > 12.5%); "
        "ejected for 7.5s, ejection 4 in a row"
    )


# --- judge ----------------------------------------------------------------------------------


def test_a_member_failing_half_its_launches_is_ejected() -> None:
    got = judge(THREE, {"beta": None}, {"beta": Reading(counts(20, 10, at=T0 - 1))}, T0)
    assert got == {
        "beta": LaunchOutcomes(
            20,
            10,
            60.0,
            T0 - 1,
            ejected_until=T0 + 30,
            ejection_reason=(
                "launches failing: 10 of 20 failed in the last 60s (50% > 25%); "
                "ejected for 30s, ejection 1 in a row"
            ),
            ejections=1,
        )
    }


def test_a_healthy_member_keeps_its_counts_and_its_last_ejection() -> None:
    past = outcomes(T0 - 100, ejections=2, reason="launches failing: before")
    got = judge(THREE, {"beta": past}, {"beta": Reading(counts(30, 3), "a note")}, T0)
    assert got["beta"] == LaunchOutcomes(
        30,
        3,
        60.0,
        T0,
        ejected_until=T0 - 100,
        ejection_reason="launches failing: before",
        ejections=2,
        error="a note",
    )


def test_below_min_launches_a_member_is_not_judged() -> None:
    got = judge(THREE, {}, {"beta": Reading(counts(9, 9))}, T0)
    assert got["beta"].ejected_until is None and got["beta"].ejections == 0


def test_without_counts_the_record_says_nothing_was_counted_and_why() -> None:
    got = judge(THREE, {"beta": None}, {"beta": Reading(None, "metrics answered HTTP 404")}, T0)
    assert got["beta"] == LaunchOutcomes(0, 0, 0.0, T0, error="metrics answered HTTP 404")


def test_an_ejection_runs_to_its_end_whatever_the_readings() -> None:
    ongoing = outcomes(T0 + 10, ejections=1, reason="launches failing: then")
    for reading in (Reading(None, "timeout"), Reading(counts(20, 0)), Reading(counts(40, 40))):
        got = judge(THREE, {"beta": ongoing}, {"beta": reading}, T0)["beta"]
        assert (got.ejected_until, got.ejection_reason, got.ejections) == (
            T0 + 10,
            "launches failing: then",
            1,
        )
        assert got.error == reading.error


def test_the_next_ejection_in_a_row_lasts_longer() -> None:
    ended = outcomes(T0 - 5, ejections=2)
    got = judge(THREE, {"beta": ended}, {"beta": Reading(counts(10, 10))}, T0)["beta"]
    assert (got.ejected_until, got.ejections) == (T0 + 90, 3)
    assert got.ejection_reason is not None and got.ejection_reason.endswith(
        "ejected for 90s, ejection 3 in a row"
    )
    long_ago = outcomes(T0 - 300, ejections=9)
    got = judge(THREE, {"beta": long_ago}, {"beta": Reading(counts(10, 10))}, T0)["beta"]
    assert (got.ejected_until, got.ejections) == (T0 + 30, 1)


def test_at_most_the_cap_worst_ratio_first() -> None:
    readings = {
        "alpha": Reading(counts(20, 10)),
        "beta": Reading(counts(20, 16)),
        "gamma": Reading(counts(10, 8)),
    }
    got = judge(THREE, {}, readings, T0)
    assert [n for n, o in got.items() if is_ejected(o, T0)] == ["beta"]
    # equal ratios: the more launches first, then by name
    tied = {"alpha": Reading(counts(10, 8)), "beta": Reading(counts(20, 16))}
    assert [n for n, o in judge(THREE, {}, tied, T0).items() if is_ejected(o, T0)] == ["beta"]
    tied = {"gamma": Reading(counts(20, 16)), "beta": Reading(counts(20, 16))}
    assert [n for n, o in judge(THREE, {}, tied, T0).items() if is_ejected(o, T0)] == ["beta"]
    # the ratio decides, not how many failed
    worse = {"alpha": Reading(counts(30, 15)), "gamma": Reading(counts(10, 10))}
    assert [n for n, o in judge(THREE, {}, worse, T0).items() if is_ejected(o, T0)] == ["gamma"]


def test_an_ejection_going_on_takes_the_room() -> None:
    previous = {"alpha": outcomes(T0 + 1), "beta": None}
    got = judge(THREE, previous, {"beta": Reading(counts(20, 20))}, T0)
    assert not is_ejected(got["beta"], T0)
    previous["alpha"] = outcomes(T0)  # over now: room again
    got = judge(THREE, previous, {"beta": Reading(counts(20, 20))}, T0)
    assert is_ejected(got["beta"], T0)
    five = make_config({n: 10 for n in ("a", "b", "c", "d", "e")}, prime=None)  # cap 1
    got = judge(five, {"a": outcomes(T0 + 1)}, {"b": Reading(counts(20, 20))}, T0)
    assert not is_ejected(got["b"], T0)
    ten = make_config({f"m{i}": 10 for i in range(10)}, prime=None)  # cap 3
    previous = {"m0": outcomes(T0 + 1)}
    readings = {f"m{i}": Reading(counts(20, 20 - i)) for i in range(1, 6)}
    got = judge(ten, previous, readings, T0)
    assert sorted(n for n, o in got.items() if is_ejected(o, T0)) == ["m1", "m2"]


def test_a_lone_member_is_never_ejected() -> None:
    one = make_config({"alpha": 10})
    got = judge(one, {}, {"alpha": Reading(counts(100, 100))}, T0)
    assert not is_ejected(got["alpha"], T0)


# --- properties -----------------------------------------------------------------------------

NAMES = [f"m{i}" for i in range(7)]
READINGS = st.none() | st.builds(
    lambda launches, failed: counts(launches, min(failed, launches)),
    st.integers(0, 40),
    st.integers(0, 40),
)
PREVIOUS = st.none() | st.builds(
    lambda until, n: outcomes(None if until is None else T0 + until, ejections=n),
    st.none() | st.floats(-400, 400),
    st.integers(0, 12),
)


@st.composite
def rounds(
    draw: st.DrawFn,
) -> tuple[int, OutcomesConfig, dict[str, LaunchOutcomes | None], dict[str, Reading]]:
    size = draw(st.integers(1, len(NAMES)))
    names = NAMES[:size]
    config = OutcomesConfig(
        max_failure_ratio=draw(st.sampled_from([0.1, 0.25, 0.5])),
        min_launches=draw(st.integers(1, 20)),
        max_ejected_share=draw(st.sampled_from([0.0, 0.2, 0.34, 0.5, 1.0])),
    )
    previous = {n: draw(PREVIOUS) for n in names}
    # within the cap to begin with, as every judgement leaves it
    cap = ejection_cap(config, size)
    for name in [n for n in names if is_ejected(previous[n], T0)][cap:]:
        previous[name] = None
    judged = draw(st.lists(st.sampled_from(names), unique=True))
    readings = {n: Reading(draw(READINGS)) for n in judged}
    return size, config, previous, readings


@settings(max_examples=400, deadline=None)
@given(rounds())
def test_never_more_than_the_cap_never_all_never_below_min_launches(
    round_: tuple[int, OutcomesConfig, dict[str, LaunchOutcomes | None], dict[str, Reading]],
) -> None:
    size, settings_, previous, readings = round_
    config = make_config({n: 10 for n in NAMES[:size]}, prime=None, outcomes=settings_.model_dump())
    got = judge(config, previous, readings, T0)
    after = {**previous, **got}
    ejected = [n for n, o in after.items() if is_ejected(o, T0)]
    assert len(ejected) <= ejection_cap(settings_, size) < max(size, 2)
    for name, outcome in got.items():
        was = previous.get(name)
        if is_ejected(was, T0):  # runs to its end, untouched
            assert was is not None
            assert (outcome.ejected_until, outcome.ejection_reason, outcome.ejections) == (
                was.ejected_until,
                was.ejection_reason,
                was.ejections,
            )
        elif is_ejected(outcome, T0):  # a new one: qualified, lasts as long as its rank says
            assert qualifies(settings_, readings[name].counts)
            assert outcome.ejected_until == T0 + ejection_time(settings_, outcome.ejections)
            assert outcome.ejections == ejections_in_a_row(settings_, was, T0) + 1
        else:
            assert outcome.ejected_until == (was.ejected_until if was else None)


@settings(max_examples=200, deadline=None)
@given(st.floats(1, 100), st.floats(1, 1000), st.integers(1, 50))
def test_ejection_times_grow_and_stay_bounded(base: float, longest: float, n: int) -> None:
    config = OutcomesConfig(base_ejection=base, max_ejection=max(base, longest))
    now, following = ejection_time(config, n), ejection_time(config, n + 1)
    assert base <= now <= following <= config.max_ejection
    assert math.isclose(now, min(base * n, config.max_ejection))


# --- a member over time, and a takeover -----------------------------------------------------


def run(totals: list[tuple[float, LaunchTotals]], window: float = 60) -> list[LaunchOutcomes]:
    """The member beta's outcomes after each sample, as the checker judges it."""
    config = make_config(outcomes={"window": window})
    samples: tuple[Sample, ...] = ()
    record: LaunchOutcomes | None = None
    history = []
    for at, total in totals:
        samples = slide(samples, Sample(at, total), window)
        start = counting_start(config, record, at)
        reading = Reading(window_counts(samples, start))
        record = judge(config, {"beta": record}, {"beta": reading}, at)["beta"]
        history.append(record)
    return history


def test_ejected_then_judged_only_on_launches_after_the_ejection() -> None:
    # 2 launches every 10 s; one of them fails from 40 s on, and none once 100 s have passed
    totals, total = [], LaunchTotals(0, 0)
    for i in range(30):
        failed = 1 if 40 <= 10 * i < 100 else 0
        total = LaunchTotals(total.launches + 2, total.failures + failed)
        totals.append((T0 + 10 * i, total))
    history = run(totals)
    ejected = [is_ejected(o, T0 + 10 * i) for i, o in enumerate(history)]
    # at 70 s, 4 of the 12 launches since 10 s failed: 30 s out; counted from 100 s on
    assert ejected == [False] * 7 + [True] * 3 + [False] * 20
    assert history[7].ejection_reason == (
        "launches failing: 4 of 12 failed in the last 60s (33.3% > 25%); "
        "ejected for 30s, ejection 1 in a row"
    )
    assert (history[9].launches, history[9].failures) == (12, 6)  # the whole window meanwhile
    assert history[10].launches == 0  # the failures before the ejection are not counted again
    assert (history[11].launches, history[11].failures) == (2, 0)
    assert history[29].ejections == 1 and history[29].ejected_until == T0 + 100


def test_a_takeover_carries_on_what_was_published() -> None:
    own = outcomes(T0 + 50, ejections=1, reason="own")
    published = outcomes(T0 + 20, ejections=4, reason="published")
    assert carried_on(own, published) == replace(
        own, ejected_until=T0 + 20, ejection_reason="published", ejections=4
    )
    assert carried_on(own, None) == replace(
        own, ejected_until=None, ejection_reason=None, ejections=0
    )
    assert carried_on(None, published) is None
    counted = LaunchOutcomes(5, 1, 30.0, T0, error="e")
    assert carried_on(counted, published) == LaunchOutcomes(
        5, 1, 30.0, T0, ejected_until=T0 + 20, ejection_reason="published", ejections=4, error="e"
    )


# --- judge_read: the checker's step after one read ---------------------------------------


def samples(*points: tuple[float, int, int]) -> tuple[Sample, ...]:
    """A window's samples from (seconds after T0, launches, failures) totals."""
    return tuple(Sample(T0 + at, LaunchTotals(n, f)) for at, n, f in points)


def test_a_read_that_fails_half_ejects_the_member_and_keeps_it_a_contender() -> None:
    window = {"beta": samples((-40, 0, 0), (0, 20, 10))}
    got = judge_read(MINUTE, ("beta", None), window, {"beta": None}, T0)
    assert got.outcomes["beta"].ejected_until == T0 + 30
    assert got.contenders == frozenset({"beta"})


def test_a_contender_not_read_keeps_its_last_error_and_leaves_once_it_is_well() -> None:
    last = LaunchOutcomes(20, 1, 60.0, T0 - 5, error="metrics answered HTTP 503")
    window = {"alpha": samples((-30, 0, 0), (0, 10, 0)), "beta": samples((-30, 0, 0), (0, 20, 1))}
    got = judge_read(MINUTE, ("alpha", "timeout"), window, {"alpha": None, "beta": last}, T0)
    assert got.outcomes["alpha"].error == "timeout"
    assert got.outcomes["beta"].error == "metrics answered HTTP 503"
    assert (got.outcomes["beta"].launches, got.outcomes["beta"].failures) == (20, 1)
    assert got.contenders == frozenset()


def test_a_contender_with_no_outcomes_published_is_judged_without_an_error() -> None:
    """Its outcomes lost (the store restarted empty, say): judged from its window alone."""
    window = {"alpha": samples((-30, 0, 0), (0, 10, 0)), "beta": samples((-30, 0, 0), (0, 20, 1))}
    got = judge_read(MINUTE, ("alpha", None), window, {"alpha": None, "beta": None}, T0)
    assert got.outcomes["beta"].error is None
    assert (got.outcomes["beta"].launches, got.outcomes["beta"].failures) == (20, 1)


def test_a_member_failing_enough_beyond_the_cap_stays_a_contender() -> None:
    ejected = outcomes(T0 + 10, ejections=1)
    window = {"beta": samples((-30, 0, 0), (0, 20, 20))}
    previous = {"alpha": ejected, "beta": None}
    got = judge_read(MINUTE, ("beta", None), window, previous, T0)
    assert got.outcomes["beta"].ejected_until is None  # the cap of 1 is taken by alpha
    assert got.contenders == frozenset({"alpha", "beta"})


def test_the_window_of_a_judged_member_starts_after_its_last_ejection() -> None:
    past = outcomes(T0 - 20, ejections=1)
    window = {"beta": samples((-50, 0, 0), (-25, 20, 20), (0, 22, 20))}
    got = judge_read(MINUTE, ("beta", None), window, {"beta": past}, T0)
    assert (got.outcomes["beta"].launches, got.outcomes["beta"].failures) == (0, 0)
    assert got.contenders == frozenset()
