"""Details of the published record that the other observe tests leave out: which error
stays the latest, the versions settled by each change, and the defaults."""

from __future__ import annotations

from typing import Any

from shared.observe import health_failure, next_observation, settled_versions
from shared.records import HealthObservation, MemberObservation

T0 = 1_700_000_000.0
V = [{"binderhub": f"{i}.0"} for i in range(4)]


def test_a_failed_health_answer_stays_the_last_error_after_a_good_one() -> None:
    first, _ = next_observation(
        None, "m", T0, health=HealthObservation("ok", (), 1, 10, T0), versions=None,
        versions_error=None,
    )  # fmt: skip
    failure = health_failure("connect refused", transport=True, now=T0 + 10)
    obs, _ = next_observation(
        first, "m", T0 + 10, health=failure, versions=None, versions_error=None
    )
    assert obs.last_error == "health: connect refused"
    # a later good answer keeps the error visible
    again, _ = next_observation(
        obs, "m", T0 + 20, health=HealthObservation("ok", (), 1, 10, T0 + 20), versions=None,
        versions_error=None,
    )  # fmt: skip
    assert again.last_error == "health: connect refused"


def test_a_good_answer_is_never_the_last_error_whatever_it_says() -> None:
    said = HealthObservation("ok", ("a note, not a failure",), 1, 10, T0)
    obs, _ = next_observation(None, "m", T0, health=said, versions=None, versions_error=None)
    assert obs.last_error is None


def observe(seen: list[tuple[float, dict[str, str]]], **kwargs: Any) -> MemberObservation:
    obs: MemberObservation | None = None
    for at, versions in seen:
        obs, _ = next_observation(
            obs, "m", at, health=None, versions=versions, versions_error=None, **kwargs
        )
    assert obs is not None
    return obs


def test_without_min_dwell_every_change_settles_the_versions_before_it() -> None:
    # three versions within half a second: with no dwell each one counted at once
    obs = observe([(T0, V[0]), (T0 + 0.2, V[1]), (T0 + 0.4, V[2])])
    assert obs.settled_versions == V[1]
    assert obs.versions_changed_at == T0 + 0.4
    # so a reader with a dwell falls back to the previous version, not an older one
    assert settled_versions(obs, T0 + 0.4, 20.0) == V[1]
    assert settled_versions(obs, T0 + 20.4, 20.0) == V[2]


def test_with_min_dwell_a_short_lived_version_never_settles() -> None:
    obs = observe([(T0, V[0]), (T0 + 0.2, V[1]), (T0 + 0.4, V[2])], min_dwell=1.0)
    assert obs.settled_versions == V[0]
    assert settled_versions(obs, T0 + 1.0, 1.0) == V[0]
    assert settled_versions(obs, T0 + 1.4, 1.0) == V[2]


def test_a_record_reads_without_the_fields_it_no_longer_carries() -> None:
    # flap damping's streak and latest answer stay in the checker; nothing read the times
    ok = HealthObservation("ok", (), 1, 10, T0)
    record = MemberObservation("m", T0, ok, versions=V[0], versions_at=T0, last_error="x")
    retired = {"raw_health": ok.to_json(), "health_streak": 3, "healthy_at": T0}
    assert not set(retired) & set(record.to_json())
    old = record.to_json() | retired | {"last_error_at": T0}
    assert MemberObservation.from_json(old) == record


def test_settled_versions_of_nothing() -> None:
    assert settled_versions(None, T0, 0.0) is None
    assert settled_versions(MemberObservation("m", T0), T0, 0.0) is None


def test_unchanged_versions_do_not_restart_the_dwell() -> None:
    obs = observe([(T0, V[0]), (T0 + 10, V[1]), (T0 + 20, V[1]), (T0 + 30, V[1])], min_dwell=15)
    assert obs.versions_changed_at == T0 + 10
    assert obs.versions_at == T0 + 30
    assert settled_versions(obs, T0 + 30, 15) == V[1]


def test_the_urls_that_answered_are_kept_until_another_answers() -> None:
    moved = "https://new.example.org"
    ok = HealthObservation("ok", (), 1, 10, T0)
    obs, _ = next_observation(None, "m", T0, health=ok, versions=V[0], versions_error=None)
    assert (obs.health_url, obs.versions_url) == (None, None)  # the configured URLs apply
    obs, _ = next_observation(
        obs, "m", T0 + 10, health=ok, versions=V[0], versions_error=None,
        health_url=f"{moved}/health", versions_url=f"{moved}/versions",
    )  # fmt: skip
    assert (obs.health_url, obs.versions_url) == (f"{moved}/health", f"{moved}/versions")
    # a round without an answer (a failure, or /health not due) keeps the last ones
    obs, _ = next_observation(
        obs, "m", T0 + 20, health=None, versions=None, versions_error="timeout"
    )
    assert (obs.health_url, obs.versions_url) == (f"{moved}/health", f"{moved}/versions")
    # each endpoint follows its own answers
    obs, _ = next_observation(
        obs, "m", T0 + 30, health=None, versions=V[0], versions_error=None,
        versions_url="https://third.example.org/versions",
    )  # fmt: skip
    assert (obs.health_url, obs.versions_url) == (
        f"{moved}/health",
        "https://third.example.org/versions",
    )
