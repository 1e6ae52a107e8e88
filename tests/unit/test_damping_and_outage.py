"""Flap damping, reference dwell, the outage policy and /why: pure rules, exhaustively."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import parse_config
from shared.evaluate import evaluate
from shared.explain import explain
from shared.observe import HealthStreak, damped_health, next_observation, settled_versions
from shared.records import CheckerHeartbeat, Drain, HealthObservation, MemberObservation

OK = HealthObservation("ok", (), 10, 100, 0.0)
BAD = HealthObservation("unhealthy", ("check failed: JupyterHub API",), None, None, 0.0)


def fold(answers: list[bool], rise: int, fall: int) -> list[str]:
    """The verdict after each answer of a sequence (True = good answer)."""
    obs: MemberObservation | None = None
    streak = HealthStreak()
    verdicts = []
    for i, good in enumerate(answers):
        obs, streak = next_observation(
            obs,
            "m",
            float(i),
            health=OK if good else BAD,
            versions=None,
            versions_error=None,
            streak=streak,
            rise=rise,
            fall=fall,
        )
        assert obs.health is not None
        verdicts.append(obs.health.status)
    return verdicts


@given(start=st.booleans(), n=st.integers(2, 60), rise=st.integers(2, 5), fall=st.integers(2, 5))
def test_alternating_answers_never_change_the_verdict(
    start: bool, n: int, rise: int, fall: int
) -> None:
    answers = [start if i % 2 == 0 else not start for i in range(n)]
    verdicts = fold(answers, rise, fall)
    assert set(verdicts) == {verdicts[0]}


@given(rise=st.integers(1, 6), fall=st.integers(1, 6), extra=st.integers(0, 5))
def test_the_verdict_flips_exactly_after_fall_then_rise_answers(
    rise: int, fall: int, extra: int
) -> None:
    answers = [True] * 3 + [False] * (fall + extra) + [True] * (rise + extra)
    verdicts = fold(answers, rise, fall)
    first_bad = verdicts.index("unhealthy")
    assert first_bad == 3 + fall - 1
    first_good_again = verdicts.index("ok", first_bad)
    assert first_good_again == 3 + fall + extra + rise - 1


@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_rise_and_fall_of_one_follow_every_answer(answers: list[bool]) -> None:
    assert fold(answers, 1, 1) == ["ok" if a else "unhealthy" for a in answers]


def test_damped_health_keeps_the_last_good_verdict_with_its_numbers() -> None:
    held = damped_health(OK, BAD, -1, 2, 2)
    assert held is OK  # pods and quota of the last good answer still count


def observe_versions(seq: list[str], dwell: float, step: float = 1.0) -> list[str | None]:
    obs: MemberObservation | None = None
    settled = []
    for i, version in enumerate(seq):
        now = i * step
        obs, _ = next_observation(
            obs,
            "m",
            now,
            health=None,
            versions={"binderhub": version},
            versions_error=None,
            min_dwell=dwell,
        )
        current = settled_versions(obs, now, dwell)
        settled.append(current["binderhub"] if current else None)
    return settled


@given(n=st.integers(2, 40), dwell=st.floats(1.5, 20))
def test_a_flapping_version_never_becomes_settled(n: int, dwell: float) -> None:
    seq = ["v1" if i % 2 == 0 else "v2" for i in range(n)]
    assert set(observe_versions(seq, dwell)) == {"v1"}


@given(before=st.integers(1, 10), after=st.integers(1, 30), dwell=st.integers(0, 10))
def test_a_stable_new_version_settles_after_the_dwell(before: int, after: int, dwell: int) -> None:
    seq = ["v1"] * before + ["v2"] * after
    settled = observe_versions(seq, float(dwell))
    changed = before  # index of the first v2 observation (time == index)
    for i, value in enumerate(settled):
        expected = "v2" if i >= changed and i - changed >= dwell else "v1"
        assert value == expected, (i, settled)


# --- the outage policy -------------------------------------------------------------------


def config(**extra: Any) -> Any:
    return parse_config(
        {
            "check": {"period": 10},
            "members": {
                "alpha": {"url": "https://alpha.example.org", "weight": 50, "prime": True},
                "beta": {"url": "https://beta.example.org", "weight": 50},
                "gamma": {"url": "https://gamma.example.org", "weight": 30},
            },
            **extra,
        }
    )


VERSIONS = {"binderhub": "1.0"}


def observations(at: float, full: tuple[str, ...] = ()) -> dict[str, MemberObservation]:
    out = {}
    for name in ("alpha", "beta", "gamma"):
        pods = 100 if name in full else 10
        health = HealthObservation("ok", (), pods, 100, at)
        out[name] = MemberObservation(name, at, health, versions=dict(VERSIONS), versions_at=at)
    return out


def test_no_outage_while_the_heartbeat_is_fresh() -> None:
    cfg = config()
    view = evaluate(cfg, observations(1000.0), {}, CheckerHeartbeat("c", 1000.0), 1029.0)
    assert not view.outage_active
    assert {t.name for t in view.targets} == {"alpha", "beta", "gamma"}


@given(silence=st.floats(31, 10_000))
def test_keep_serves_the_view_as_it_was_at_the_last_heartbeat(silence: float) -> None:
    cfg = config(outage={"policy": "keep"})
    obs = observations(1000.0, full=("beta",))
    heartbeat = CheckerHeartbeat("c", 1000.0)
    then = evaluate(cfg, obs, {}, heartbeat, 1000.0)
    later = evaluate(cfg, obs, {}, heartbeat, 1000.0 + silence)
    assert later.outage_active and "heartbeat" in (later.outage_reason or "")
    assert later.targets == then.targets  # beta stays out, nobody is judged stale
    assert [m.state for m in later.members] == [m.state for m in then.members]
    assert later.heartbeat == heartbeat and later.evaluated_at == 1000.0 + silence
    before, after = then.pick("/build/gh/a/b/c"), later.pick("/build/gh/a/b/c")
    assert (after.member, after.url, after.reason) == (before.member, before.url, "outage")
    assert after.url == cfg.members[after.member or ""].url


@given(silence=st.floats(31, 10_000), drained=st.sampled_from(["alpha", "beta", "gamma"]))
def test_all_sends_to_every_undrained_member_by_weight(silence: float, drained: str) -> None:
    cfg = config(outage={"policy": "all"})
    obs = observations(1000.0, full=("beta",))
    drains = {drained: Drain(drained, "maintenance", 900.0)}
    view = evaluate(cfg, obs, drains, CheckerHeartbeat("c", 1000.0), 1000.0 + silence)
    assert view.outage_active and not view.fallback_active
    assert [t.name for t in view.targets] == [n for n in cfg.members if n != drained]
    for t in view.targets:  # the configured URL and weight: where the redirects go
        assert (t.url, t.weight) == (cfg.members[t.name].url, cfg.members[t.name].weight)
    decision = view.pick("/build/gh/a/b/c")
    assert decision.reason == "outage"
    assert decision.member != drained
    assert decision.url == cfg.members[decision.member or ""].url


# --- explain ------------------------------------------------------------------------------


@settings(max_examples=200)
@given(
    path=st.text(min_size=1, max_size=60).map(lambda s: "/build/gh/" + s),
    full=st.sets(st.sampled_from(["alpha", "beta", "gamma"])),
)
def test_explain_agrees_with_the_pick(path: str, full: set[str]) -> None:
    cfg = config()
    view = evaluate(cfg, observations(1000.0, tuple(full)), {}, CheckerHeartbeat("c", 1000), 1001.0)
    doc = explain(view, path)
    decision = view.pick(path)
    assert doc["pick"] == {
        "member": decision.member,
        "url": decision.url,
        "reason": decision.reason,
    }
    assert {c["member"] for c in doc["candidates"] if c["in"]} == {t.name for t in view.targets}
    ins = [c for c in doc["candidates"] if c["in"]]
    if not view.fallback_active and ins:
        assert ins[0]["member"] == decision.member  # sorted by score, the winner first
    for c in doc["candidates"]:
        if not c["in"]:
            assert c["why"]  # every excluded member says why


# --- freshness is judged as of the heartbeat (found by the soak run) ---------------------


@given(silence=st.floats(0, 10), lag=st.floats(0, 0.99))
def test_a_silent_checker_never_makes_fresh_records_stale_before_the_outage_rule(
    silence: float, lag: float
) -> None:
    """Observations are older than the heartbeat that published them (by ``lag``). When
    the heartbeat stops (Redis or checker gone), no member and no reference may turn stale
    on the router's clock before the outage policy takes over: the view just holds."""
    cfg = parse_config(
        {
            "check": {"period": 1},
            "members": {
                "alpha": {"url": "https://alpha.example.org", "weight": 50, "prime": True},
                "beta": {"url": "https://beta.example.org", "weight": 50},
                "gamma": {"url": "https://gamma.example.org", "weight": 30},
            },
        }
    )
    hb = CheckerHeartbeat("c", 1000.0)
    seen = 1000.0 - lag
    full = HealthObservation("ok", (), 100, 100, seen)
    ok = HealthObservation("ok", (), 10, 100, seen)
    obs = {
        name: MemberObservation(name, seen, health, versions={"binderhub": v}, versions_at=seen)
        for name, health, v in (("alpha", full, "1"), ("beta", ok, "1"), ("gamma", ok, "2"))
    }
    at_heartbeat = evaluate(cfg, obs, {}, hb, 1000.0)
    later = evaluate(cfg, obs, {}, hb, 1000.0 + silence)
    assert [t.name for t in at_heartbeat.targets] == ["beta"]
    assert [t.name for t in later.targets] == ["beta"]  # never gamma, never the full prime
    assert not later.fallback_active and not later.reference.stale
    assert later.member("gamma").state == "version_mismatch"  # type: ignore[union-attr]
    assert later.outage_active == (silence > cfg.max_staleness)
    assert later.reference.age == pytest.approx(silence + lag)  # shown against now
