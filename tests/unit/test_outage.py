"""The outage policy: when the checker's heartbeat is too old, and what each policy serves."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.evaluate import View, evaluate
from shared.records import CheckerHeartbeat
from tests.support.builders import FULL_PODS, NOW, drain, make_config, make_obs, url

HEARTBEAT_AT = NOW - 1000.0


def view_after(silence: float, policy: str = "keep", **settings: object) -> View:
    """alpha (prime) eligible, beta full, gamma unhealthy, as seen at the last heartbeat;
    then ``silence`` seconds without one. Period 10: max_staleness 30 by default."""
    config = make_config(outage={"policy": policy, **settings})
    observations = {
        "alpha": make_obs("alpha", now=HEARTBEAT_AT),
        "beta": make_obs("beta", now=HEARTBEAT_AT, pods=FULL_PODS),
        "gamma": make_obs("gamma", now=HEARTBEAT_AT, status="unhealthy"),
    }
    heartbeat = CheckerHeartbeat("checker-1", HEARTBEAT_AT)
    return evaluate(config, observations, {}, heartbeat, HEARTBEAT_AT + silence)


@pytest.mark.parametrize("policy", ["keep", "all"])
def test_the_outage_starts_only_past_max_staleness(policy: str) -> None:
    at_limit = view_after(30.0, policy)
    assert not at_limit.outage_active
    assert at_limit.outage_reason is None
    assert [t.name for t in at_limit.targets] == ["alpha"]
    assert at_limit.pick("/build/gh/o/r/x").reason == "balancer"
    past = view_after(30.5, policy)
    assert past.outage_active
    assert past.pick("/build/gh/o/r/x").reason == "outage"


def test_max_staleness_comes_from_the_config() -> None:
    assert not view_after(59.0, max_staleness=60).outage_active
    assert view_after(61.0, max_staleness=60).outage_active
    assert view_after(31.0).outage_active  # default: 3 x period


def test_each_policy_says_what_it_does() -> None:
    keep = view_after(45.0, "keep")
    assert keep.outage_reason == (
        "checker heartbeat is older than 30s: serving the last known good view"
    )
    every = view_after(45.0, "all")
    assert every.outage_reason == (
        "checker heartbeat is older than 30s: sending launches to every member that is not drained"
    )


def test_keep_serves_the_last_view_with_its_urls() -> None:
    view = view_after(500.0, "keep")
    # alpha's weight of 50, times its free share of the quota
    assert [(t.name, t.url, t.weight) for t in view.targets] == [("alpha", url("alpha"), 40.0)]
    assert [m.state for m in view.members] == ["eligible", "full", "unhealthy"]
    decision = view.pick("/build/gh/o/r/x")
    assert (decision.member, decision.url, decision.reason) == ("alpha", url("alpha"), "outage")
    assert not view.fallback_active


def test_all_sends_to_every_member_that_is_not_drained_by_weight() -> None:
    config = make_config(outage={"policy": "all"})
    observations = {
        "alpha": make_obs("alpha", now=HEARTBEAT_AT, status="unreachable"),
        "beta": make_obs("beta", now=HEARTBEAT_AT, pods=FULL_PODS),
    }
    heartbeat = CheckerHeartbeat("checker-1", HEARTBEAT_AT)
    view = evaluate(config, observations, {"beta": drain("beta")}, heartbeat, NOW)
    # even unreachable, unobserved (gamma) and stale members: the records cannot be trusted
    assert [(t.name, t.url, t.weight) for t in view.targets] == [
        ("alpha", url("alpha"), 50),
        ("gamma", url("gamma"), 30),
    ]
    assert view.outage_active
    assert not view.fallback_active
    assert view.fallback_reason is None
    # the members show their records as they age, judged against now
    assert [m.state for m in view.members] == ["stale", "drained", "stale"]
    decisions = {view.pick(f"/build/gh/org/repo{i}/x") for i in range(40)}
    assert {(d.member, d.url, d.reason) for d in decisions} == {
        ("alpha", url("alpha"), "outage"),
        ("gamma", url("gamma"), "outage"),
    }


def test_all_with_every_member_drained_sends_nowhere() -> None:
    config = make_config(outage={"policy": "all"})
    heartbeat = CheckerHeartbeat("checker-1", HEARTBEAT_AT)
    drains = {name: drain(name) for name in config.members}
    view = evaluate(config, {}, drains, heartbeat, NOW)
    assert view.outage_active and view.targets == ()
    assert view.pick("/build/gh/o/r/x").member is None


@settings(max_examples=100, deadline=None)
@given(
    silence=st.floats(0, 1000),
    max_staleness=st.none() | st.floats(1, 500),
    policy=st.sampled_from(["keep", "all"]),
)
def test_outage_exactly_when_the_heartbeat_is_older_than_max_staleness(
    silence: float, max_staleness: float | None, policy: str
) -> None:
    settings = {} if max_staleness is None else {"max_staleness": max_staleness}
    view = view_after(silence, policy, **settings)
    limit = 30.0 if max_staleness is None else max_staleness
    age = (HEARTBEAT_AT + silence) - HEARTBEAT_AT  # as the clock sees it
    assert view.outage_active == (age > limit)
    assert (view.outage_reason is not None) == view.outage_active
    assert view.heartbeat is not None and view.evaluated_at - view.heartbeat.at == age
