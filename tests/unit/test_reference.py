"""The reference version under each policy: prime, majority, pinned; age, staleness, keys."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import parse_config
from shared.records import MemberObservation
from shared.reference import (
    Reference,
    compared_keys,
    fresh_versions,
    reference_version,
    version_differences,
)
from tests.support.builders import (
    FULL_PODS,
    NOW,
    V1,
    V1B,
    V2,
    make_config,
    make_obs,
    observe_all,
    url,
)
from tests.support.views import member_of, run, states

V3 = {"binderhub": "3.0", "builder": "r2d:3"}


def prime_obs(status: str | None, **kwargs: Any) -> MemberObservation:
    """The prime as observed, where ``status`` may also be "full"."""
    if status == "full":
        return make_obs("alpha", pods=FULL_PODS, **kwargs)
    return make_obs("alpha", status=status, **kwargs)


# --- prime --------------------------------------------------------------------------------


def test_prime_reference_is_the_primes_versions_with_their_age() -> None:
    config = make_config()
    obs = observe_all(config) | {"alpha": make_obs("alpha", versions=V2, versions_age=12)}
    ref = reference_version(config, obs, NOW)
    assert ref.policy == "prime"
    assert ref.versions == V2
    assert ref.keys == ("binderhub", "builder")
    assert ref.source == "prime alpha"
    assert ref.observed_at == NOW - 12
    assert ref.age == 12
    assert not ref.stale
    assert ref.stale_reason is None


@pytest.mark.parametrize("status", ["ok", "full", "unhealthy", "unreachable", None])
def test_freshly_observed_prime_versions_change_the_reference_whatever_its_health(
    status: str | None,
) -> None:
    config = make_config()
    before = observe_all(config, versions=V1)
    after = before | {"alpha": prime_obs(status, versions=V2)}
    assert reference_version(config, before, NOW).versions == V1
    ref = reference_version(config, after, NOW)
    assert ref.versions == V2
    assert not ref.stale


@pytest.mark.parametrize("status", ["full", "unhealthy", "unreachable"])
def test_incident_members_stay_eligible_after_upgrading_with_the_prime_out(status: str) -> None:
    config = make_config()
    obs = {
        "alpha": prime_obs(status, versions=V2),
        "beta": make_obs("beta", versions=V2),
        "gamma": make_obs("gamma", versions=V2),
    }
    view = run(config, obs)
    assert states(view) == {"alpha": status, "beta": "eligible", "gamma": "eligible"}
    assert view.reference.versions == V2
    assert not view.gate_suspended


@settings(max_examples=200, deadline=None)
@given(
    versions_age=st.none() | st.floats(0, 200) | st.sampled_from([29.999, 30.0, 30.001]),
    max_age=st.none() | st.sampled_from([1.0, 30.0, 45.5, 100.0]),
    period=st.sampled_from([5.0, 10.0, 20.0]),
    status=st.sampled_from(["ok", "full", "unhealthy", "unreachable", None]),
    record_age=st.floats(0, 200),
)
def test_prime_reference_is_stale_exactly_when_its_versions_are_old_or_missing(
    versions_age: float | None,
    max_age: float | None,
    period: float,
    status: str | None,
    record_age: float,
) -> None:
    versions: dict[str, Any] = {} if max_age is None else {"max_age": max_age}
    config = make_config(check={"period": period}, versions=versions)
    limit = max_age if max_age is not None else 3 * period
    assert config.versions_max_age == limit
    alpha = prime_obs(
        status,
        versions=None if versions_age is None else V2,
        versions_age=versions_age or 0.0,
        record_age=record_age,
    )
    obs = observe_all(config) | {"alpha": alpha}

    ref = reference_version(config, obs, NOW)

    # the age as the clock sees it (NOW - versions_at), not the float that made it
    age = None if alpha.versions_at is None else NOW - alpha.versions_at
    assert ref.stale == (age is None or age > limit)
    assert (ref.stale_reason is not None) == ref.stale
    if age is None:
        assert ref.versions is None
        assert ref.age is None
    else:
        assert ref.versions == V2  # even when stale, the last versions are shown
        assert ref.age == age
        assert ref.age == pytest.approx(versions_age, abs=1e-6)
    view = run(config, obs)
    if ref.stale:
        assert not any("version_mismatch" in m.excluded_by for m in view.members)


def test_prime_without_any_observation_is_a_stale_reference() -> None:
    config = make_config()
    obs = observe_all(config)
    del obs["alpha"]
    ref = reference_version(config, obs, NOW)
    assert ref.stale
    assert ref.versions is None
    assert ref.stale_reason == "the prime alpha has no observed versions"


def test_stale_reason_carries_the_versions_error() -> None:
    config = make_config()
    never = replace(make_obs("alpha", versions=None), versions_error="versions answered HTTP 500")
    ref = reference_version(config, {"alpha": never}, NOW)
    assert ref.stale_reason == (
        "the prime alpha has no observed versions (versions answered HTTP 500)"
    )
    old = replace(make_obs("alpha", versions_age=90), versions_error="connect timeout")
    ref = reference_version(config, {"alpha": old}, NOW)
    assert ref.stale
    assert ref.stale_reason == (
        "the prime's versions were not observed in the last 30s: connect timeout"
    )


def test_a_versions_error_alone_does_not_make_fresh_versions_stale() -> None:
    config = make_config()
    obs = replace(make_obs("alpha", versions_age=5), versions_error="versions answered HTTP 502")
    ref = reference_version(config, {"alpha": obs}, NOW)
    assert not ref.stale
    assert ref.versions == V1


# --- majority -------------------------------------------------------------------------------


def majority_config(weights: dict[str, float], **settings: Any) -> Any:
    versions = {"reference": "majority", **settings.pop("versions", {})}
    return make_config(weights, prime=None, versions=versions, **settings)


def test_majority_defaults_without_a_prime_and_follows_weight_not_count() -> None:
    config = make_config({"a": 100, "b": 30, "c": 30, "d": 30}, prime=None)
    assert config.reference_policy == "majority"
    obs = {
        "a": make_obs("a", versions=V2),
        "b": make_obs("b", versions=V1),
        "c": make_obs("c", versions=V1),
        "d": make_obs("d", versions=V1, versions_age=5),
    }
    ref = reference_version(config, obs, NOW)
    assert ref.versions == V2
    assert ref.source == "majority of a (weight 100 of 190)"
    assert not ref.stale
    config = make_config({"a": 80, "b": 30, "c": 30, "d": 30}, prime=None)
    ref = reference_version(config, obs, NOW)
    assert ref.versions == V1
    assert ref.source == "majority of b, c, d (weight 90 of 170)"
    assert ref.observed_at == NOW - 5  # the oldest observation of the winning group
    assert ref.age == 5


def test_majority_tie_on_weight_goes_to_more_members() -> None:
    config = majority_config({"a": 60, "b": 30, "c": 30})
    obs = {"a": make_obs("a", versions=V1), "b": make_obs("b", versions=V2), "c": make_obs(
        "c", versions=V2)}  # fmt: skip
    assert reference_version(config, obs, NOW).versions == V2


def test_majority_full_tie_is_decided_by_the_versions_not_by_who_has_them() -> None:
    config = majority_config({"a": 50, "b": 50})
    one = {"a": make_obs("a", versions=V1), "b": make_obs("b", versions=V2)}
    other = {"a": make_obs("a", versions=V2), "b": make_obs("b", versions=V1)}
    assert reference_version(config, one, NOW).versions == V1  # smallest canonical JSON
    assert reference_version(config, other, NOW).versions == V1


def test_majority_ignores_old_versions() -> None:
    config = majority_config({"a": 100, "b": 10})
    obs = {"a": make_obs("a", versions=V2, versions_age=31), "b": make_obs("b", versions=V1)}
    ref = reference_version(config, obs, NOW)
    assert ref.versions == V1
    view = run(config, obs)
    assert member_of(view, "a").excluded_by == ("version_mismatch",)


def test_majority_counts_unhealthy_and_full_members() -> None:
    config = majority_config({"a": 100, "b": 10})
    obs = {
        "a": make_obs("a", status="unreachable", versions=V2),
        "b": make_obs("b", versions=V1),
    }
    assert reference_version(config, obs, NOW).versions == V2


def test_majority_without_fresh_versions_is_stale() -> None:
    config = majority_config({"a": 1, "b": 1})
    obs = {"a": make_obs("a", versions=None), "b": make_obs("b", versions_age=300)}
    ref = reference_version(config, obs, NOW)
    assert ref.stale
    assert ref.versions is None
    assert ref.stale_reason == "no member has versions observed within 30s"
    view = run(config, obs)
    assert view.gate_suspended
    assert states(view) == {"a": "eligible", "b": "eligible"}


version_sets = st.sampled_from([V1, V2, V3, V1B])


@st.composite
def majority_federations(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, MemberObservation]]:
    names = draw(st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=7, unique=True))
    keys = draw(st.sampled_from([None, ["binderhub"]]))
    raw: dict[str, Any] = {
        "members": {n: {"url": url(n), "weight": draw(st.integers(1, 20))} for n in names},
        "versions": {"reference": "majority"} | ({"keys": keys} if keys else {}),
    }
    observations = {
        n: make_obs(
            n,
            versions=draw(st.none() | version_sets),
            versions_age=draw(st.sampled_from([0.0, 10.0, 30.0, 31.0, 500.0])),
            status=draw(st.sampled_from(["ok", "unhealthy", "unreachable"])),
        )
        for n in names
        if draw(st.integers(0, 5))
    }
    return raw, observations


@settings(max_examples=200, deadline=None)
@given(fed=majority_federations())
def test_majority_group_with_the_largest_weight_wins(
    fed: tuple[dict[str, Any], dict[str, MemberObservation]],
) -> None:
    raw, observations = fed
    config = parse_config(raw, "hypothesis")
    keys = config.versions.keys
    groups: dict[str, float] = {}
    for name, obs in observations.items():
        if obs.versions is None or obs.versions_at is None or NOW - obs.versions_at > 30:
            continue
        compared = obs.versions if keys is None else {k: obs.versions.get(k) for k in keys}
        canon = json.dumps(compared, sort_keys=True)
        groups[canon] = groups.get(canon, 0) + config.members[name].weight

    ref = reference_version(config, observations, NOW)

    if not groups:
        assert ref.stale
        assert ref.versions is None
        return
    assert not ref.stale
    assert ref.versions is not None
    won = ref.versions if keys is None else {k: ref.versions.get(k) for k in keys}
    won_weight = groups[json.dumps(won, sort_keys=True)]
    assert won_weight == max(groups.values())
    if keys is not None:
        assert set(ref.versions) <= set(keys)


@settings(max_examples=200, deadline=None)
@given(fed=majority_federations(), data=st.data())
def test_majority_ties_are_deterministic_for_any_order(
    fed: tuple[dict[str, Any], dict[str, MemberObservation]], data: st.DataObject
) -> None:
    raw, observations = fed
    order = data.draw(st.permutations(list(raw["members"])))
    obs_order = data.draw(st.permutations(list(observations)))
    shuffled = raw | {"members": {n: raw["members"][n] for n in order}}
    a = reference_version(parse_config(raw, "a"), observations, NOW)
    b = reference_version(parse_config(shuffled, "b"), {n: observations[n] for n in obs_order}, NOW)
    assert a == b


def test_majority_with_fractional_weights_does_not_depend_on_member_order() -> None:
    # Regression: float + in config order made 0.1+0.2+0.3 beat 4 x 0.15 in one order only.
    weights = {"a1": 0.1, "a2": 0.2, "a3": 0.3, "b1": 0.15, "b2": 0.15, "b3": 0.15, "b4": 0.15}
    obs = {n: make_obs(n, versions=V1 if n.startswith("a") else V2) for n in weights}
    forward = majority_config(weights)
    backward = majority_config({n: weights[n] for n in reversed(weights)})
    # exactly rounded, both sums are 0.6: a tie on weight, which the larger group wins
    assert reference_version(forward, obs, NOW).versions == V2
    assert reference_version(backward, obs, NOW).versions == V2


# --- pinned -----------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    pinned=version_sets,
    observed=st.lists(st.none() | version_sets, min_size=3, max_size=3),
    ages=st.lists(st.floats(0, 10_000), min_size=3, max_size=3),
)
def test_pinned_reference_is_the_config_value_and_never_stale(
    pinned: dict[str, str], observed: list[dict[str, str] | None], ages: list[float]
) -> None:
    config = make_config(versions={"reference": "pinned", "pinned": pinned})
    obs = {
        name: make_obs(name, versions=versions, versions_age=age, record_age=age)
        for name, versions, age in zip(config.members, observed, ages, strict=True)
    }
    ref = reference_version(config, obs, NOW)
    assert ref.versions == pinned
    assert not ref.stale
    assert ref.stale_reason is None
    assert ref.source == "pinned in config"
    assert ref.age is None
    assert reference_version(config, {}, NOW) == ref


def test_pinned_reference_gates_members() -> None:
    config = make_config(versions={"reference": "pinned", "pinned": V2})
    obs = observe_all(config) | {"beta": make_obs("beta", versions=V2)}
    view = run(config, obs)
    assert states(view) == {"alpha": "version_mismatch", "beta": "eligible", "gamma": (
        "version_mismatch")}  # fmt: skip


# --- compared keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "versions",
    [
        {"reference": "prime"},
        {"reference": "pinned", "pinned": V1},
        {"reference": "majority"},
    ],
)
def test_narrowed_keys_ignore_differences_in_other_keys(versions: dict[str, Any]) -> None:
    config = make_config({"alpha": 50, "beta": 20, "gamma": 20}, versions=versions | {
        "keys": ["binderhub"]})  # fmt: skip
    obs = {
        "alpha": make_obs("alpha", versions=V1),
        "beta": make_obs("beta", versions=V1B),  # other builder, same binderhub
        "gamma": make_obs("gamma", versions=V2),  # other binderhub
    }
    view = run(config, obs)
    assert view.reference.keys == ("binderhub",)
    assert view.reference.versions is not None
    assert view.reference.versions["binderhub"] == "1.0"
    assert states(view) == {"alpha": "eligible", "beta": "eligible", "gamma": "version_mismatch"}
    assert member_of(view, "beta").version_differences == ()
    assert member_of(view, "gamma").version_differences == ("binderhub",)


def test_without_narrowing_every_key_is_compared() -> None:
    config = make_config({"alpha": 50, "beta": 20})
    obs = {"alpha": make_obs("alpha", versions=V1), "beta": make_obs("beta", versions=V1B)}
    view = run(config, obs)
    assert member_of(view, "beta").version_differences == ("builder",)
    assert states(view)["beta"] == "version_mismatch"


def test_majority_groups_by_the_narrowed_keys_only() -> None:
    config = majority_config({"a": 50, "b": 30, "c": 30}, versions={"keys": ["binderhub"]})
    obs = {
        "a": make_obs("a", versions=V2),
        "b": make_obs("b", versions=V1),
        "c": make_obs("c", versions=V1B),
    }
    ref = reference_version(config, obs, NOW)
    assert ref.versions == {"binderhub": "1.0"}
    assert ref.source == "majority of b, c (weight 60 of 110)"


def test_member_with_extra_keys_matches_a_reference_without_them() -> None:
    config = make_config({"alpha": 50, "beta": 20})
    obs = {
        "alpha": make_obs("alpha", versions=V1),
        "beta": make_obs("beta", versions=V1 | {"extra": "x"}),
    }
    assert states(run(config, obs))["beta"] == "eligible"


# --- small pieces -----------------------------------------------------------------------------


def test_compared_keys() -> None:
    assert compared_keys(make_config(), {"b": "1", "a": "2"}) == ("a", "b")
    assert compared_keys(make_config(), None) == ()
    narrowed = make_config(versions={"keys": ["x", "binderhub"]})
    assert compared_keys(narrowed, V1) == ("x", "binderhub")


def test_fresh_versions_boundary() -> None:
    assert fresh_versions(make_obs("a", versions_age=30), NOW, 30) == V1
    assert fresh_versions(make_obs("a", versions_age=30.001), NOW, 30) is None
    assert fresh_versions(make_obs("a", versions=None), NOW, 30) is None
    assert fresh_versions(None, NOW, 30) is None


def test_version_differences() -> None:
    ref = Reference("pinned", V1, ("binderhub", "builder"), "pinned", None, None, stale=False)
    assert version_differences(V1, ref) == ()
    assert version_differences(V1B, ref) == ("builder",)
    assert version_differences({"binderhub": "1.0"}, ref) == ("builder",)
    assert version_differences(None, ref) == ("*",)
    unknown = replace(ref, versions=None, stale=True)
    assert version_differences(V2, unknown) == ()
