"""The reference as the routers see it through a rolling deploy: ``versions.min_dwell`` for
the prime and the majority policies, and majority comparisons on every key.

Records are built round by round with ``next_observation``, as the checker builds them.
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import FederationConfig
from shared.evaluate import View
from shared.observe import next_observation
from shared.records import HealthObservation, MemberObservation
from shared.reference import reference_version
from tests.support.builders import NOW, V1, V1B, V2, make_config, make_obs
from tests.support.views import member_of, run, states

T0 = 1_700_000_000.0
PERIOD = 10.0  # min_dwell 20 s and versions max age 30 s by default


def checked(
    history: Mapping[str, list[dict[str, str]]], min_dwell: float = 2 * PERIOD
) -> dict[str, MemberObservation]:
    """Each member's record after one check a period, the i-th seeing ``history[name][i]``."""
    records: dict[str, MemberObservation] = {}
    for name, seen in history.items():
        obs: MemberObservation | None = None
        for i, versions in enumerate(seen):
            now = T0 + i * PERIOD
            health = HealthObservation("ok", (), 10, 100, now)
            obs, _ = next_observation(
                obs, name, now, health=health, versions=versions, versions_error=None,
                min_dwell=min_dwell,
            )  # fmt: skip
        assert obs is not None
        records[name] = obs
    return records


def at_round(config: FederationConfig, records: dict[str, MemberObservation], i: int) -> View:
    return run(config, records, now=T0 + i * PERIOD)


# --- prime --------------------------------------------------------------------------------


def test_a_new_prime_version_becomes_the_reference_only_after_min_dwell() -> None:
    config = make_config(check={"period": PERIOD})  # alpha prime, beta, gamma
    # alpha upgrades at round 2; gamma follows at once; beta stays on V1
    history = {"alpha": [V1, V1, V2], "beta": [V1, V1, V1], "gamma": [V1, V1, V2]}
    view = at_round(config, checked(history), 2)
    assert view.reference.versions == V1  # V2 seen for 0 s of the 20 s dwell
    assert view.reference.source == "prime alpha"
    assert view.reference.observed_at == T0 + 2 * PERIOD  # the prime was just observed
    assert not view.reference.stale
    assert states(view) == {
        "alpha": "version_mismatch",
        "beta": "eligible",
        "gamma": "version_mismatch",
    }

    history = {name: [*seen, seen[-1]] for name, seen in history.items()}
    assert at_round(config, checked(history), 3).reference.versions == V1  # 10 s < 20 s

    history = {name: [*seen, seen[-1]] for name, seen in history.items()}
    view = at_round(config, checked(history), 4)  # 20 s unchanged: settled
    assert view.reference.versions == V2
    assert states(view) == {"alpha": "eligible", "beta": "version_mismatch", "gamma": "eligible"}


def test_a_flapping_prime_keeps_the_settled_reference() -> None:
    config = make_config(check={"period": PERIOD})
    flapping = [V1, V1, V2, V1, V2, V1, V2]
    history = {"alpha": flapping, "beta": [V1] * 7, "gamma": [V2] * 7}
    for i in range(2, 7):
        records = checked({name: seen[: i + 1] for name, seen in history.items()})
        view = at_round(config, records, i)
        assert view.reference.versions == V1, i
        assert states(view)["beta"] == "eligible"
        assert states(view)["gamma"] == "version_mismatch"


def test_without_dwell_the_prime_version_counts_at_once() -> None:
    config = make_config(check={"period": PERIOD}, versions={"min_dwell": 0})
    history = {"alpha": [V1, V2], "beta": [V1, V2], "gamma": [V1, V1]}
    view = at_round(config, checked(history, min_dwell=0), 1)
    assert view.reference.versions == V2
    assert states(view) == {"alpha": "eligible", "beta": "eligible", "gamma": "version_mismatch"}


# --- majority -----------------------------------------------------------------------------


def test_a_new_majority_version_becomes_the_reference_only_after_min_dwell() -> None:
    # a and b (weight 80 of 110) upgrade at round 1: the majority once it has settled
    config = make_config({"a": 50, "b": 30, "c": 30}, prime=None, check={"period": PERIOD})
    assert config.reference_policy == "majority"
    history = {"a": [V1, V2], "b": [V1, V2], "c": [V1, V1]}
    view = at_round(config, checked(history), 1)
    assert view.reference.versions == V1
    assert view.reference.source == "majority of a, b, c (weight 110 of 110)"
    assert states(view) == {"a": "version_mismatch", "b": "version_mismatch", "c": "eligible"}

    history = {name: [*seen, seen[-1], seen[-1]] for name, seen in history.items()}
    view = at_round(config, checked(history), 3)  # V2 unchanged for 20 s
    assert view.reference.versions == V2
    assert view.reference.source == "majority of a, b (weight 80 of 110)"
    assert states(view) == {"a": "eligible", "b": "eligible", "c": "version_mismatch"}


@settings(max_examples=60, deadline=None)
@given(dwell_rounds=st.integers(0, 4), rounds_after=st.integers(0, 6))
def test_majority_follows_the_settled_versions_of_each_member(
    dwell_rounds: int, rounds_after: int
) -> None:
    dwell = dwell_rounds * PERIOD
    config = make_config(
        {"a": 50, "b": 30, "c": 30},
        prime=None,
        check={"period": PERIOD},
        versions={"min_dwell": dwell},
    )
    history = {"a": [V1] + [V2] * (rounds_after + 1), "b": [V1] + [V2] * (rounds_after + 1)}
    history["c"] = [V1] * (rounds_after + 2)
    ref = reference_version(config, checked(history, dwell), T0 + (rounds_after + 1) * PERIOD)
    assert ref.versions == (V2 if rounds_after * PERIOD >= dwell else V1)


def test_majority_without_configured_keys_compares_every_key() -> None:
    config = make_config({"a": 50, "b": 30, "c": 20}, prime=None)
    assert config.versions.keys is None
    obs = {
        "a": make_obs("a", versions=V1),
        "b": make_obs("b", versions=V1),
        "c": make_obs("c", versions=V1B),  # same binderhub, other builder
    }
    view = run(config, obs)
    assert view.reference.versions == V1
    assert view.reference.keys == ("binderhub", "builder")
    c = member_of(view, "c")
    assert c.state == "version_mismatch"
    assert c.version_differences == ("builder",)
    assert c.reasons == (
        "version differs from the reference (majority of a, b (weight 80 of 100)) on: builder",
    )
    assert [t.name for t in view.targets] == ["a", "b"]


def test_majority_reference_ages_with_its_oldest_supporter() -> None:
    config = make_config({"a": 50, "b": 30, "c": 20}, prime=None)
    obs = {
        "a": make_obs("a", versions=V2, versions_age=4),
        "b": make_obs("b", versions=V2, versions_age=9),
        "c": make_obs("c", versions=V1),
    }
    view = run(config, obs)
    assert view.reference.versions == V2
    assert view.reference.observed_at == NOW - 9
    assert view.reference.age == 9
    assert not view.reference.stale
