"""The evaluated view: member states and reasons, gate suspension, fallback, and picking.

The builders (``make_config``, ``make_obs``, ``run``, ``federations``) live in
tests/support/builders.py.
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import FederationConfig, parse_config
from shared.evaluate import STATES
from shared.explain import explain
from shared.records import Drain, MemberObservation
from shared.status import view_to_json
from tests.support.builders import (
    FULL_PODS,
    NAMES,
    V1,
    V1B,
    V2,
    drain,
    federations,
    make_config,
    make_obs,
    observe_all,
    url,
)
from tests.support.views import evaluate_raw, member_of, run, states

# --- state precedence and reasons ------------------------------------------------------------


PRECEDENCE_CASES = list(
    itertools.product(
        [False, True],  # drained
        [False, True],  # stale record
        ["ok", "unhealthy", "unreachable", None],  # health status
        [False, True],  # full
        [False, True],  # version mismatch
    )
)


@pytest.mark.parametrize(("drained", "stale", "status", "full", "mismatch"), PRECEDENCE_CASES)
def test_state_is_the_first_applicable_rule_and_reasons_list_all(
    drained: bool, stale: bool, status: str | None, full: bool, mismatch: bool
) -> None:
    # A pinned reference and an always-eligible anchor keep the gate on and the reference
    # independent of the member under test.
    config = make_config(
        {"anchor": 10, "x": 10}, prime=None, versions={"reference": "pinned", "pinned": V1}
    )
    age = 100.0 if stale else 0.0
    obs = {
        "anchor": make_obs("anchor"),
        "x": make_obs(
            "x",
            status=status,
            pods=FULL_PODS if full else 10,
            versions=V2 if mismatch else V1,
            versions_age=age,
            record_age=age,
        ),
    }
    view = run(config, obs, {"x": drain("x", "rack move")} if drained else {})

    expected = [
        state
        for state, applies in [
            ("drained", drained),
            ("stale", stale),
            ("unreachable", status == "unreachable"),
            ("unhealthy", status in ("unhealthy", None)),
            ("full", status == "ok" and full),
            ("version_mismatch", mismatch or stale),  # a stale record has old versions
        ]
        if applies
    ]
    x = view.member("x")
    assert x is not None
    assert x.excluded_by == tuple(expected)
    assert x.state == (expected[0] if expected else "eligible")
    assert len(x.reasons) == len(expected)
    # eligible: its weight times its free share of the quota (shared.capacity)
    assert x.effective_weight == (0.0 if expected else 10.0 * (x.capacity_share or 1.0))
    assert not view.gate_suspended
    assert states(view)["anchor"] == "eligible"


def test_reasons_say_why() -> None:
    config = make_config(
        {"anchor": 10, "x": 10}, prime=None, versions={"reference": "pinned", "pinned": V1}
    )
    obs = {
        "anchor": make_obs("anchor"),
        "x": make_obs("x", pods=FULL_PODS, versions=V2, versions_age=100, record_age=100),
    }
    x = run(config, obs, {"x": drain("x", "rack move")}).member("x")
    assert x is not None
    drained, stale, full, mismatch = x.reasons
    assert drained == "drained by an operator: rack move"
    assert stale == "record not refreshed for more than 30s"
    assert full == "full: 95 pods + headroom 10 >= quota 100"
    assert "versions not observed recently" in mismatch

    fresh = {"anchor": make_obs("anchor"), "x": make_obs("x", versions=V1B)}
    x = run(config, fresh).member("x")
    assert x is not None
    assert x.reasons == ("version differs from the reference (pinned in config) on: builder",)
    assert x.version_differences == ("builder",)


def test_member_without_any_record_is_stale_and_not_comparable() -> None:
    config = make_config(
        {"anchor": 10, "x": 10}, prime=None, versions={"reference": "pinned", "pinned": V1}
    )
    view = run(config, {"anchor": make_obs("anchor")})
    x = view.member("x")
    assert x is not None
    assert x.excluded_by == ("stale", "version_mismatch")
    assert x.reasons[0] == "no observation published yet"
    assert (x.checked_at, x.health_at, x.versions_at) == (None, None, None)


def test_unhealthy_and_unreachable_reasons_come_from_the_observation() -> None:
    config = make_config({"a": 1, "b": 1, "c": 1}, prime=None)
    obs = {
        "a": make_obs("a", status="unhealthy", reasons=["check failed: Docker registry"]),
        "b": make_obs("b", status="unreachable", reasons=["connect timeout"]),
        "c": make_obs("c"),
    }
    view = run(config, obs)
    assert member_of(view, "a").reasons == ("check failed: Docker registry",)
    assert member_of(view, "b").reasons == ("connect timeout",)
    assert states(view) == {"a": "unhealthy", "b": "unreachable", "c": "eligible"}


def test_record_age_boundary_uses_stale_after() -> None:
    config = make_config({"a": 1, "b": 1}, prime=None)  # period 10: stale after 30 s
    at_limit = run(config, {"a": make_obs("a", record_age=30), "b": make_obs("b")})
    past_limit = run(config, {"a": make_obs("a", record_age=30.5), "b": make_obs("b")})
    assert states(at_limit)["a"] == "eligible"
    assert member_of(past_limit, "a").excluded_by[0] == "stale"


# --- the full rule ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(pods=st.integers(0, 10_000), quota=st.integers(0, 10_000), headroom=st.integers(0, 500))
def test_full_exactly_when_pods_plus_headroom_reach_the_quota(
    pods: int, quota: int, headroom: int
) -> None:
    config = make_config({"a": 1}, prime=None, pod_headroom=headroom)
    view = run(config, {"a": make_obs("a", pods=pods, quota=quota)})
    assert (states(view)["a"] == "full") == (pods + headroom >= quota)
    assert states(view)["a"] in ("full", "eligible")


@pytest.mark.parametrize(("pods", "state"), [(89, "eligible"), (90, "full"), (91, "full")])
def test_full_boundary(pods: int, state: str) -> None:
    config = make_config({"a": 1}, prime=None)
    assert states(run(config, {"a": make_obs("a", pods=pods, quota=100)}))["a"] == state


@settings(max_examples=100, deadline=None)
@given(pods=st.none() | st.integers(0, 10**9), headroom=st.integers(0, 500))
def test_no_quota_is_never_full(pods: int | None, headroom: int) -> None:
    config = make_config({"a": 1}, prime=None, pod_headroom=headroom)
    view = run(config, {"a": make_obs("a", pods=pods, quota=None)})
    assert states(view)["a"] == "eligible"


# --- the incident: a full prime's versions still move the reference -------------------------


@pytest.mark.parametrize("prime_state", ["full", "unhealthy", "unreachable"])
def test_upgrade_while_the_prime_is_out_of_rotation(prime_state: str) -> None:
    config = make_config()
    prime_obs = (
        make_obs("alpha", pods=FULL_PODS, versions=V2)
        if prime_state == "full"
        else make_obs("alpha", status=prime_state, versions=V2)
    )
    obs = {
        "alpha": prime_obs,
        "beta": make_obs("beta", versions=V2),
        "gamma": make_obs("gamma", versions=V2),
    }

    view = run(config, obs)

    assert view.reference.versions == V2
    assert not view.reference.stale
    assert states(view) == {"alpha": prime_state, "beta": "eligible", "gamma": "eligible"}
    assert not view.gate_suspended
    assert not view.fallback_active
    assert [t.name for t in view.targets] == ["beta", "gamma"]


def test_partial_upgrade_while_the_prime_is_full_gates_the_laggard() -> None:
    config = make_config()
    obs = {
        "alpha": make_obs("alpha", pods=FULL_PODS, versions=V2),
        "beta": make_obs("beta", versions=V2),
        "gamma": make_obs("gamma", versions=V1),
    }
    view = run(config, obs)
    assert states(view) == {"alpha": "full", "beta": "eligible", "gamma": "version_mismatch"}
    assert member_of(view, "gamma").version_differences == ("binderhub", "builder")


def test_prime_with_old_versions_suspends_gating_instead_of_excluding() -> None:
    config = make_config()
    obs = {
        "alpha": make_obs("alpha", pods=FULL_PODS, versions=V1, versions_age=300),
        "beta": make_obs("beta", versions=V2),
        "gamma": make_obs("gamma", versions=V2),
    }
    view = run(config, obs)
    assert view.reference.stale
    assert view.gate_suspended
    assert view.gate_reason is not None
    assert view.gate_reason.startswith("reference version is stale")
    assert states(view) == {"alpha": "full", "beta": "eligible", "gamma": "eligible"}


# --- gate suspension --------------------------------------------------------------------------


def test_gate_suspended_when_every_otherwise_eligible_member_mismatches() -> None:
    config = make_config()
    obs = {
        "alpha": make_obs("alpha", status="unhealthy", versions=V2),
        "beta": make_obs("beta", versions=V1),
        "gamma": make_obs("gamma", versions=V1),
    }
    view = run(config, obs)
    assert not view.reference.stale
    assert view.gate_suspended
    assert view.gate_reason == "version gating would exclude every otherwise eligible member"
    assert states(view) == {"alpha": "unhealthy", "beta": "eligible", "gamma": "eligible"}
    assert not view.fallback_active
    assert member_of(view, "beta").version_differences == ("binderhub", "builder")


def test_gate_not_suspended_while_one_member_matches() -> None:
    config = make_config()
    obs = {
        "alpha": make_obs("alpha", status="unhealthy", versions=V2),
        "beta": make_obs("beta", versions=V2),
        "gamma": make_obs("gamma", versions=V1),
    }
    view = run(config, obs)
    assert not view.gate_suspended
    assert view.gate_reason is None
    assert states(view) == {"alpha": "unhealthy", "beta": "eligible", "gamma": "version_mismatch"}


def test_gate_not_suspended_when_mismatched_members_are_also_excluded_otherwise() -> None:
    config = make_config(fallback="none")
    obs = {
        "alpha": make_obs("alpha", status="unhealthy", versions=V2),
        "beta": make_obs("beta", pods=FULL_PODS, versions=V1),
        "gamma": make_obs("gamma", status="unreachable", versions=V1),
    }
    view = run(config, obs)
    assert not view.gate_suspended
    assert view.fallback_active
    assert member_of(view, "beta").excluded_by == ("full", "version_mismatch")


# --- fallback ---------------------------------------------------------------------------------


def all_unhealthy(config: FederationConfig) -> dict[str, MemberObservation]:
    return observe_all(config, status="unhealthy")


def test_fallback_defaults_to_the_prime() -> None:
    config = make_config()
    view = run(config, all_unhealthy(config))
    assert view.fallback_active
    assert view.fallback_policy == "prime"
    assert [t.name for t in view.targets] == ["alpha"]
    assert view.fallback_reason is not None
    assert "alpha" in view.fallback_reason
    decision = view.pick("/build/gh/org/repo/HEAD")
    assert (decision.member, decision.url, decision.reason) == ("alpha", url("alpha"), "fallback")


@pytest.mark.parametrize("prime_weight", [50, 0.5])
def test_fallback_prime_is_the_sole_target_at_weight_one(prime_weight: float) -> None:
    """The fallback prime is balanced (and shown by /why) at weight 1, whatever its
    configured weight: it is the only target, so its weight decides nothing."""
    config = make_config({"alpha": prime_weight, "beta": 50})
    view = run(config, all_unhealthy(config))
    assert [(t.name, t.weight) for t in view.targets] == [("alpha", 1.0)]
    assert view.pick("/build/gh/org/repo/HEAD").member == "alpha"
    why = explain(view, "/build/gh/org/repo/HEAD")
    assert [(c["member"], c["in"], c["weight"]) for c in why["candidates"]] == [
        ("alpha", True, 1.0),
        ("beta", False, 50),
    ]


def test_fallback_prime_skips_a_drained_prime() -> None:
    config = make_config()
    view = run(config, all_unhealthy(config), {"alpha": drain("alpha")})
    assert view.fallback_active
    assert view.targets == ()
    assert view.pick("/build/gh/a/b/c").member is None
    assert "nobody" in (view.fallback_reason or "")


def test_fallback_all_sends_to_every_member_not_unreachable_and_not_drained() -> None:
    config = make_config({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}, prime=None)
    obs = {
        "a": make_obs("a", status="unreachable"),
        "b": make_obs("b", status="unhealthy"),
        "c": make_obs("c", pods=FULL_PODS),
        "d": make_obs("d", record_age=100),
        "e": make_obs("e", status="unhealthy"),
    }
    view = run(config, obs, {"e": drain("e")})
    assert config.fallback_policy == "all"
    assert view.fallback_active
    assert [(t.name, t.weight) for t in view.targets] == [("b", 2), ("c", 3), ("d", 4)]
    picked = {view.pick(f"/build/gh/org/repo{i}/HEAD").member for i in range(200)}
    assert picked == {"b", "c", "d"}


def test_fallback_all_excludes_stale_unreachable_members() -> None:
    config = make_config({"a": 1, "b": 1}, prime=None)
    obs = {
        "a": make_obs("a", status="unreachable", record_age=100),
        "b": make_obs("b", status="unhealthy"),
    }
    view = run(config, obs)
    assert [t.name for t in view.targets] == ["b"]


def test_fallback_none_picks_nobody() -> None:
    config = make_config(fallback="none")
    view = run(config, all_unhealthy(config))
    assert view.fallback_active
    assert view.targets == ()
    for path in ("/build/gh/a/b/c", "/", "/v2/gh/x/y/z"):
        decision = view.pick(path, sticky_url=url("beta"), u=0.5)
        assert (decision.member, decision.url, decision.reason) == (None, None, None)


def test_no_fallback_while_a_member_is_eligible() -> None:
    config = make_config(fallback="none")
    obs = all_unhealthy(config) | {"gamma": make_obs("gamma")}
    view = run(config, obs)
    assert not view.fallback_active
    assert view.fallback_reason is None
    assert [t.name for t in view.targets] == ["gamma"]
    assert view.pick("/build/gh/a/b/c").reason == "balancer"


# --- pick -------------------------------------------------------------------------------------


def test_cookie_is_honoured_for_an_eligible_member() -> None:
    config = make_config()
    view = run(config, observe_all(config))
    for name in config.members:
        decision = view.pick("/build/gh/org/repo/HEAD", sticky_url=url(name))
        assert (decision.member, decision.reason) == (name, "cookie")


def test_cookie_for_an_ineligible_member_is_ignored() -> None:
    config = make_config()
    obs = observe_all(config) | {"gamma": make_obs("gamma", status="unhealthy")}
    view = run(config, obs)
    for i in range(50):
        decision = view.pick(f"/build/gh/org/repo{i}/HEAD", sticky_url=url("gamma"))
        assert decision.member in ("alpha", "beta")
        assert decision.reason == "balancer"


def test_cookie_is_ignored_during_fallback() -> None:
    config = make_config({"a": 1, "b": 1}, prime=None)
    view = run(config, all_unhealthy(config))
    assert view.fallback_active
    for name in ("a", "b"):
        assert view.pick("/build/gh/o/r/x", sticky_url=url(name)).reason == "fallback"


def test_rendezvous_pick_groups_refs_of_one_repository() -> None:
    config = make_config()
    view = run(config, observe_all(config))
    for i in range(30):
        repo = f"/build/gh/Org/repo{i}"
        members = {view.pick(f"{repo}/{ref}").member for ref in ("HEAD", "main", "v1.0", "abc")}
        assert len(members) == 1
        assert members == {view.pick(f"{repo.lower()}/another-ref").member}


def test_random_pick_follows_u_and_weights() -> None:
    config = make_config(load_balancer="random")  # alpha 50, beta 50, gamma 30
    view = run(config, observe_all(config))
    assert view.pick("/x", u=0.0).member == "alpha"
    assert view.pick("/x", u=49.9 / 130).member == "alpha"
    assert view.pick("/x", u=50.1 / 130).member == "beta"
    assert view.pick("/x", u=100.1 / 130).member == "gamma"
    assert view.pick("/x", u=0.999999).member == "gamma"


# --- properties over random federations -------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(fed=federations())
def test_stale_reference_never_excludes_for_version(
    fed: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]],
) -> None:
    view = evaluate_raw(fed)
    if view.reference.stale:
        assert view.gate_suspended
        assert view.reference.stale_reason
        for m in view.members:
            assert "version_mismatch" not in m.excluded_by
    else:
        assert view.reference.versions is not None


@settings(max_examples=200, deadline=None)
@given(fed=federations())
def test_state_reasons_and_targets_are_consistent(
    fed: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]],
) -> None:
    view = evaluate_raw(fed)
    raw, _, drains = fed
    assert [m.name for m in view.members] == list(raw["members"])
    for m in view.members:
        assert m.state == (m.excluded_by[0] if m.excluded_by else "eligible")
        assert len(m.reasons) == len(m.excluded_by)
        assert all(m.reasons)
        assert list(m.excluded_by) == sorted(m.excluded_by, key=STATES.index)
        assert len(set(m.excluded_by)) == len(m.excluded_by)
        assert ("drained" in m.excluded_by) == (m.name in drains)
        factors = (m.capacity_share or 1.0) * (m.ramp or 1.0)
        assert m.effective_weight == (m.weight * factors if m.eligible else 0.0)
    assert view.fallback_active == (not view.eligible)
    if not view.fallback_active:
        assert [(t.name, t.weight) for t in view.targets] == [
            (m.name, m.effective_weight) for m in view.eligible
        ]
        assert view.fallback_reason is None
    # /status.json says what the view decided, in JSON types only (test_status_json.py
    # pins each field and holds every view to the documented schema)
    doc = view_to_json(view)
    assert json.loads(json.dumps(doc)) == doc
    assert doc["targets"] == [t.name for t in view.targets]
    assert {name: (row["state"], row["reasons"]) for name, row in doc["members"].items()} == {
        m.name: (m.state, list(m.reasons)) for m in view.members
    }


@settings(max_examples=200, deadline=None)
@given(fed=federations())
def test_fallback_set_follows_the_policy(
    fed: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]],
) -> None:
    view = evaluate_raw(fed)
    if not view.fallback_active:
        return
    names = [t.name for t in view.targets]
    if view.fallback_policy == "prime":
        assert names == [m.name for m in view.members if m.prime and m.state != "drained"]
    elif view.fallback_policy == "all":
        assert names == [
            m.name
            for m in view.members
            if m.state != "drained" and "unreachable" not in m.excluded_by
        ]
    else:
        assert names == []
    assert view.fallback_reason is not None


@settings(max_examples=200, deadline=None)
@given(fed=federations())
def test_gate_suspension_only_when_gating_alone_would_leave_nobody(
    fed: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]],
) -> None:
    view = evaluate_raw(fed)
    if view.reference.stale:
        return
    if view.gate_suspended:
        assert view.gate_reason
        assert view.eligible, "suspending the gate must make someone eligible"
        # every member it admitted would have been excluded by the version rule alone
        assert all(m.version_differences for m in view.eligible)
        assert not any("version_mismatch" in m.excluded_by for m in view.members)
    else:
        assert view.gate_reason is None
        for m in view.eligible:
            assert m.version_differences == ()
        if not view.eligible:
            assert not any(m.excluded_by == ("version_mismatch",) for m in view.members)


paths = st.sampled_from(
    ["/build/gh/org/repo/HEAD", "/build/gl/g%2Fr/main", "/", "/v2/gh/a/b/c"]
) | st.text(max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    fed=federations(),
    path=paths,
    u=st.floats(0, 1, exclude_max=True),
    sticky=st.none() | st.sampled_from([url(n) for n in NAMES]) | st.text(max_size=20),
)
def test_pick_never_returns_an_ineligible_member_outside_the_fallback_set(
    fed: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]],
    path: str,
    u: float,
    sticky: str | None,
) -> None:
    view = evaluate_raw(fed)
    decision = view.pick(path, sticky_url=sticky, u=u)
    if decision.member is None:
        assert view.targets == ()
        assert view.fallback_active
        return
    chosen = view.member(decision.member)
    assert chosen is not None
    assert decision.url == chosen.url
    if view.fallback_active:
        assert decision.reason == "fallback"
        assert decision.member in {t.name for t in view.targets}
    else:
        assert chosen.eligible
        sticky_eligible = any(m.url == sticky for m in view.eligible)
        assert (decision.reason == "cookie") == sticky_eligible
        if sticky_eligible:
            assert decision.url == sticky


@settings(max_examples=200, deadline=None)
@given(fed=federations())
def test_evaluate_is_deterministic_and_does_not_mutate_its_inputs(
    fed: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]],
) -> None:
    raw, observations, drains = fed
    config = parse_config(raw, "hypothesis")
    before = (config.model_dump(), copy.deepcopy(observations), copy.deepcopy(drains))
    first = run(config, observations, drains)
    second = run(config, observations, drains)
    assert first == second
    assert (config.model_dump(), observations, drains) == before
    # the view holds copies: changing it does not reach the observations
    for m in first.members:
        if m.versions is not None:
            m.versions["binderhub"] = "tampered"
    if first.reference.versions is not None:
        first.reference.versions["binderhub"] = "tampered"
    assert observations == before[1]
    assert config.model_dump() == before[0]


@settings(max_examples=200, deadline=None)
@given(fed=federations(), data=st.data())
def test_evaluate_does_not_depend_on_member_or_observation_order(
    fed: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]],
    data: st.DataObject,
) -> None:
    raw, observations, drains = fed
    order = data.draw(st.permutations(list(raw["members"])))
    obs_order = data.draw(st.permutations(list(observations)))
    shuffled_raw = raw | {"members": {n: raw["members"][n] for n in order}}
    shuffled_obs = {n: observations[n] for n in obs_order}

    a = run(parse_config(raw, "a"), observations, drains)
    b = run(parse_config(shuffled_raw, "b"), shuffled_obs, drains)

    assert a.reference == b.reference
    assert {m.name: (m.state, m.excluded_by) for m in a.members} == {
        m.name: (m.state, m.excluded_by) for m in b.members
    }
    assert a.gate_suspended == b.gate_suspended
    assert a.fallback_active == b.fallback_active
    assert sorted(a.targets, key=lambda t: t.name) == sorted(b.targets, key=lambda t: t.name)
    if a.config.load_balancer == "rendezvous":
        for path in ("/build/gh/org/repo/HEAD", "/build/gh/x/y/z", "/"):
            assert a.pick(path).member == b.pick(path).member
