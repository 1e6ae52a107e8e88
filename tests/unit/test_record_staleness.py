"""Timing consistency of a record's staleness (issue 16, point 4).

Two rules: ``record_max_age`` is never shorter than a record can go unrefreshed while its
member's checks run (derived, or the config is refused), and a bad /health answer to a
record that had gone stale counts at once: a stale member never turns eligible on a
failed check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import (
    CheckConfig,
    ConfigError,
    check_config,
    effective_config,
    parse_config,
    read_config,
)
from shared.evaluate import evaluate
from shared.observe import (
    HealthStreak,
    damped_health,
    health_failure,
    next_observation,
    record_lapsed,
)
from shared.records import CheckerHeartbeat, HealthObservation, MemberObservation
from shared.rules import stale_reason

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0


def members() -> dict[str, Any]:
    return {"a": {"url": "https://a.example.org", "weight": 10}}


def config_with(check: dict[str, Any], **top: Any) -> Any:
    return parse_config({"members": members(), "check": check, **top}, "f.yaml")


# --- rule 1: how long a record can go unrefreshed -------------------------------------------


@pytest.mark.parametrize(
    ("period", "timeout", "longest"), [(2, 5, 5), (10, 2, 10), (3, 3, 3), (0.5, 0.75, 0.75)]
)
def test_a_round_lasts_the_longer_of_timeout_and_period(
    period: float, timeout: float, longest: float
) -> None:
    # retries only start when they can end within the period, so their number is no factor
    check = CheckConfig(period=period, timeout=timeout, retries=20)
    assert check.longest_round == longest


@pytest.mark.parametrize(
    ("check", "refresh"),
    [
        ({"period": 2, "timeout": 5, "jitter": 0.1}, 7.2),
        ({"period": 2, "timeout": 5, "jitter": 0.0}, 7.0),
        ({"period": 10, "timeout": 2, "jitter": 0.1}, 21.0),  # the defaults
        ({"period": 15, "timeout": 5, "jitter": 0.05}, 30.75),  # mybinder.org's, mapped
        ({"period": 1, "timeout": 1, "jitter": 0.5}, 2.5),
    ],
)
def test_longest_refresh_is_a_jittered_period_and_the_longest_round(
    check: dict[str, Any], refresh: float
) -> None:
    assert CheckConfig(**check).longest_refresh == refresh


def test_longest_refresh_is_rounded_to_the_millisecond() -> None:
    # 2 x 1.1 + 5 is 7.2000000000000002 in floats: the minimum a message names must pass
    assert CheckConfig(period=2, timeout=5, jitter=0.1).longest_refresh == 7.2
    assert CheckConfig(period=1, timeout=1, jitter=0.0004).longest_refresh == 2.0
    assert CheckConfig(period=1, timeout=1, jitter=0.0006).longest_refresh == 2.001


@pytest.mark.parametrize(
    ("check", "stale_after"),
    [
        ({"period": 2, "timeout": 5}, 7.2),  # the case: 3 periods are only 6 s
        ({"period": 2, "timeout": 4, "jitter": 0.0}, 6.0),  # both 6 s
        ({"period": 2, "timeout": 4.5, "jitter": 0.0}, 6.5),
        ({"period": 10, "timeout": 2}, 30.0),  # the defaults: three periods
        ({"period": 10, "timeout": 20}, 31.0),
    ],
)
def test_record_max_age_left_out_covers_the_longest_refresh(
    check: dict[str, Any], stale_after: float
) -> None:
    assert config_with(check).stale_after == stale_after


def test_record_max_age_at_the_minimum_is_accepted() -> None:
    config = config_with({"period": 2, "timeout": 5}, record_max_age=7.2)
    assert config.stale_after == 7.2


@pytest.mark.parametrize("source", ["members", "hosts"])
def test_record_max_age_below_the_minimum_is_refused_with_file_key_value_and_minimum(
    source: str,
) -> None:
    doc = {source: members(), "check": {"period": 2, "timeout": 5}, "record_max_age": 7.199}
    if source == "hosts":  # legacy: jitter 0.2 there spreads ±0.1 here
        doc["check"] = {"period": 2, "timeout": 5, "jitter": 0.2}
    with pytest.raises(ConfigError) as info:
        check_config(doc, "federation.json")
    message = str(info.value)
    assert message.startswith("federation.json: key 'record_max_age': 7.199s is shorter")
    assert "(7.2s: check.period x (1 + check.jitter)" in message
    assert message.endswith("set at least 7.2 or leave it out")
    assert "\n" not in message


def test_record_max_age_shorter_than_a_period_is_refused() -> None:
    # the old code took it, and every member went stale between two of its checks
    with pytest.raises(ConfigError, match="key 'record_max_age': 7s is shorter"):
        config_with({}, record_max_age=7)


def test_the_legacy_mapping_feeds_the_bound() -> None:
    # legacy jitter 0.1 means ±0.05 here: 10 x 1.05 + 30 = 40.5 (timeout 30 > 3 periods)
    config = parse_config({"hosts": members(), "check": {"timeout": 30}})
    assert config.check.jitter == 0.05
    assert config.stale_after == 40.5


def shipped_configs() -> list[Path]:
    return sorted(
        [*(ROOT / "tests" / "fixtures").glob("*.json"), *(ROOT / "examples").glob("*.y*ml")]
    )


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_covers_its_checks(path: Path) -> None:
    config = read_config(path).config
    assert config.stale_after >= config.check.longest_refresh


def test_the_shipped_configs_are_found() -> None:
    names = {p.name for p in shipped_configs()}
    assert {"mybinder-prod-config.json", "incident-majority.yaml"} <= names


def test_mybinder_prod_keeps_three_periods() -> None:
    config = read_config(ROOT / "tests" / "fixtures" / "mybinder-prod-config.json").config
    assert config.stale_after == 45


def test_a_derived_record_max_age_loads_back_to_itself() -> None:
    config = config_with({"period": 2, "timeout": 5})
    effective = effective_config(config)
    assert effective["record_max_age"] == 7.2
    again = check_config(json.loads(json.dumps(effective)), "effective.json").config
    assert effective_config(again) == effective


checks = st.builds(
    CheckConfig,
    period=st.floats(0.01, 3600),
    jitter=st.floats(0, 0.999),
    retries=st.integers(0, 20),
    timeout=st.floats(0.01, 3600),
)


@settings(max_examples=300)
@given(checks)
def test_a_derived_limit_is_never_shorter_than_a_refresh(check: CheckConfig) -> None:
    config = parse_config({"members": members(), "check": check.model_dump()})
    # what fetch_parsed's deadline allows: a jittered wait, then the longer of the first
    # attempt's timeout and the round's period (rounding to the millisecond aside)
    longest = check.period * (1 + check.jitter) + max(check.timeout, check.period)
    assert config.stale_after >= longest - 0.0005
    assert config.stale_after >= 3 * check.period
    assert config.stale_after == max(3 * check.period, check.longest_refresh)
    # versions come once a round too: a hung /health must not make them "not recent"
    assert config.versions_max_age == config.stale_after


@settings(max_examples=300)
@given(checks, st.floats(0.001, 10_000))
def test_an_explicit_limit_is_taken_exactly_when_it_covers_a_refresh(
    check: CheckConfig, limit: float
) -> None:
    doc = {"members": members(), "check": check.model_dump(), "record_max_age": limit}
    if limit >= check.longest_refresh:
        assert parse_config(doc).stale_after == limit
    else:
        with pytest.raises(ConfigError, match="key 'record_max_age'"):
            parse_config(doc)


# --- rule 2: a failed answer to a stale record counts at once --------------------------------


def ok(now: float) -> HealthObservation:
    return HealthObservation("ok", (), 10, 100, now)


def bad(now: float) -> HealthObservation:
    return health_failure("no complete answer within 5s", transport=True, now=now)


def record(verdict: HealthObservation | None, checked_at: float) -> MemberObservation:
    return MemberObservation("m", checked_at, health=verdict)


ONE_GOOD = HealthStreak(1)


def step(
    previous: MemberObservation | None,
    answer: HealthObservation,
    stale_after: float | None = 8.0,
    rise: int = 2,
    fall: int = 2,
    *,
    streak: HealthStreak = ONE_GOOD,
) -> tuple[MemberObservation, HealthStreak]:
    """One answer more, to ``previous`` held with ``streak`` (one good answer, unless told)."""
    return next_observation(
        previous, "m", answer.observed_at, health=answer, versions=None, versions_error=None,
        streak=streak, rise=rise, fall=fall, stale_after=stale_after,
    )  # fmt: skip


@pytest.mark.parametrize(("age", "lapsed"), [(7.75, False), (8.0, False), (8.0625, True)])
def test_a_record_lapses_once_older_than_stale_after(age: float, lapsed: bool) -> None:
    # the same boundary as evaluate's stale_reason: stale when older, not at the limit
    # (ages exact in binary, so the boundary is the one compared)
    assert record_lapsed(record(ok(T0), T0), T0 + age, 8.0) is lapsed


@settings(max_examples=300)
@given(st.floats(0, 10_000), st.floats(0.001, 1_000))
def test_a_record_lapses_exactly_when_routers_call_it_stale(age: float, limit: float) -> None:
    # observe cannot import evaluate (evaluate imports observe through reference): two
    # copies of one comparison, held together here
    previous = record(ok(T0), T0)
    stale = stale_reason(previous, T0 + age, limit) is not None
    assert record_lapsed(previous, T0 + age, limit) is stale


def test_no_record_or_no_limit_never_lapses() -> None:
    assert not record_lapsed(None, T0, 7.2)
    assert not record_lapsed(record(ok(T0), T0), T0 + 10**9, None)


def test_a_bad_answer_to_a_stale_record_counts_at_once() -> None:
    # the issue: a hung /health ends with its first bad answer after the record went stale
    after, streak = step(record(ok(T0), T0), bad(T0 + 8.0625), streak=HealthStreak(5))
    assert after.health is not None and after.health.status == "unreachable"
    assert streak == HealthStreak(-1)


def test_a_bad_answer_to_a_fresh_record_waits_for_fall() -> None:
    after, streak = step(record(ok(T0), T0), bad(T0 + 8.0), streak=HealthStreak(5))
    assert after.health is not None and after.health.status == "ok"
    assert streak == HealthStreak(-1)  # the answer counted; the verdict waits for another


def test_without_a_limit_a_bad_answer_waits_for_fall_however_late() -> None:
    after, _ = step(record(ok(T0), T0), bad(T0 + 1000), stale_after=None)
    assert after.health is not None and after.health.status == "ok"


def test_a_good_answer_to_a_stale_record_still_needs_rise() -> None:
    # a stale, unreachable member that answers well once is not healthy yet
    down = record(bad(T0), T0)
    after, streak = step(down, ok(T0 + 100), streak=HealthStreak(-3))
    assert after.health is not None and after.health.status == "unreachable"
    after, _ = step(after, ok(T0 + 102), streak=streak)
    assert after.health is not None and after.health.status == "ok"


def test_a_good_answer_to_a_stale_healthy_record_keeps_it_healthy() -> None:
    after, _ = step(record(ok(T0), T0), ok(T0 + 100))
    assert after.health is not None and after.health.status == "ok"


@pytest.mark.parametrize("late", [1.0, 100.0])
def test_an_excluded_member_stays_excluded_on_a_bad_answer(late: float) -> None:
    # verdict not ok: a failure keeps it out, stale record or not
    down = record(HealthObservation("unhealthy", ("check failed",), observed_at=T0), T0)
    after, streak = step(down, bad(T0 + late), streak=HealthStreak(-1))
    assert after.health is not None and after.health.status == "unreachable"
    assert streak == HealthStreak(-2)


def test_damped_health_flips_a_good_verdict_at_once_only_after_a_lapse() -> None:
    good, failed = ok(T0), bad(T0 + 1)
    assert damped_health(good, failed, -1, 2, 2) is good
    assert damped_health(good, failed, -1, 2, 2, lapsed=True) is failed
    assert damped_health(bad(T0), ok(T0 + 1), 1, 2, 2, lapsed=True).status == "unreachable"


def state_at(obs: MemberObservation, stale_after: float) -> str:
    """The member's state as a router shows it, the heartbeat at the record's end of round."""
    config = parse_config(
        {"members": members(), "check": {"period": 2, "timeout": 1}, "record_max_age": stale_after}
    )
    heartbeat = CheckerHeartbeat("c", obs.checked_at)
    view = evaluate(config, {"a": obs}, {}, heartbeat, obs.checked_at)
    member = view.member("a")
    assert member is not None
    return member.state


answers = st.lists(st.tuples(st.floats(0.1, 30), st.booleans()), min_size=1, max_size=30)


@settings(max_examples=500)
@given(answers, st.integers(1, 4), st.integers(1, 4))
def test_a_member_stale_before_a_failed_answer_is_not_eligible_until_rise_good_answers(
    history: list[tuple[float, bool]], rise: int, fall: int
) -> None:
    stale_after = 8.0
    obs: MemberObservation | None = None
    streak = HealthStreak()
    now = T0
    goods_since_lapse: int | None = None  # None: no lapse with a bad answer to watch
    for gap, good in history:
        lapsed = obs is not None and gap > stale_after
        now += gap
        answer = ok(now) if good else bad(now)
        obs, streak = step(obs, answer, stale_after, rise, fall, streak=streak)
        if lapsed and not good:
            goods_since_lapse = 0
        elif goods_since_lapse is not None:
            goods_since_lapse = goods_since_lapse + 1 if good else 0
        if goods_since_lapse is not None and goods_since_lapse < rise:
            assert obs.health is not None and obs.health.status != "ok"
            assert state_at(obs, stale_after) != "eligible"
        if goods_since_lapse is not None and goods_since_lapse >= rise:
            goods_since_lapse = None  # healthy again: damping applies as before


def test_versions_max_age_given_is_taken_as_given() -> None:
    config = parse_config(
        {"members": members(), "check": {"period": 2, "timeout": 5}, "versions": {"max_age": 3}}
    )
    assert config.versions_max_age == 3
    assert (
        parse_config({"members": members(), "check": {"period": 2, "timeout": 5}}).versions_max_age
        == 7.2
    )
