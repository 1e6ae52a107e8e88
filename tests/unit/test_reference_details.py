"""What the reference says about itself (policy, source, age, staleness) under each policy,
and the majority's tie-break by canonical JSON."""

from __future__ import annotations

from shared.reference import reference_version
from tests.support.builders import NOW, V1, V2, make_config, make_obs
from tests.support.views import run, states

# Two version sets whose canonical (sorted-key) JSON and config-order JSON sort differently.
LOW_HUB = {"binderhub": "1.0", "builder": "r2d:9"}
HIGH_HUB = {"binderhub": "2.0", "builder": "r2d:1"}


def test_majority_reference_names_its_policy_and_supporters() -> None:
    config = make_config({"a": 50, "b": 30}, prime=None)
    ref = reference_version(config, {"a": make_obs("a"), "b": make_obs("b", versions=V2)}, NOW)
    assert ref.policy == "majority"
    assert ref.source == "majority of a (weight 50 of 80)"
    assert ref.stale is False
    assert ref.stale_reason is None
    assert ref.age == 0.0  # observed this instant
    assert ref.observed_at == NOW


def test_majority_without_fresh_versions_still_names_its_policy() -> None:
    config = make_config({"a": 1}, prime=None)
    ref = reference_version(config, {"a": make_obs("a", versions_age=31)}, NOW)
    assert (ref.policy, ref.source, ref.versions, ref.keys) == ("majority", "majority", None, ())
    assert ref.stale is True
    assert (ref.observed_at, ref.age) == (None, None)


def test_a_prime_without_versions_still_names_its_policy_and_source() -> None:
    config = make_config()
    ref = reference_version(config, {"alpha": make_obs("alpha", versions=None)}, NOW)
    assert (ref.policy, ref.source, ref.versions, ref.keys) == ("prime", "prime alpha", None, ())
    assert ref.stale is True
    assert (ref.observed_at, ref.age) == (None, None)


def test_prime_reference_is_fresh_at_exactly_max_age() -> None:
    config = make_config()  # max age 30 s
    at_limit = reference_version(config, {"alpha": make_obs("alpha", versions_age=30)}, NOW)
    assert at_limit.stale is False
    past = reference_version(config, {"alpha": make_obs("alpha", versions_age=30.5)}, NOW)
    assert past.stale is True
    assert past.stale_reason == "the prime's versions were not observed in the last 30s"


def test_pinned_reference_is_never_stale() -> None:
    config = make_config(versions={"reference": "pinned", "pinned": V2})
    ref = reference_version(config, {}, NOW)
    assert (ref.policy, ref.stale, ref.stale_reason) == ("pinned", False, None)
    assert ref.keys == ("binderhub", "builder")


def test_majority_tie_goes_to_the_smallest_canonical_json_whatever_the_key_order() -> None:
    # equal weight, equal count: the tie-break compares the sorted-key JSON, so the listed
    # order of versions.keys cannot change the winner
    for keys in (["binderhub", "builder"], ["builder", "binderhub"]):
        config = make_config(
            {"a": 10, "b": 10}, prime=None, versions={"reference": "majority", "keys": keys}
        )
        obs = {"a": make_obs("a", versions=HIGH_HUB), "b": make_obs("b", versions=LOW_HUB)}
        ref = reference_version(config, obs, NOW)
        assert ref.versions == LOW_HUB, keys
        assert ref.keys == tuple(keys)
        assert states(run(config, obs)) == {"a": "version_mismatch", "b": "eligible"}


def test_majority_tie_between_unnarrowed_version_sets() -> None:
    config = make_config({"a": 10, "b": 10}, prime=None)
    obs = {"a": make_obs("a", versions=HIGH_HUB), "b": make_obs("b", versions=V1)}
    assert reference_version(config, obs, NOW).versions == V1
