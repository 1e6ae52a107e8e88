"""Folding one round of checks into a member's record: health and versions stay independent."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.observe import HealthStreak, health_failure, health_is_failing, next_observation
from shared.records import HealthObservation, MemberObservation
from shared.reference import reference_version
from tests.support.builders import V1, V2, make_config, observe_all
from tests.support.views import run

T0 = 1_700_000_000.0
OK = HealthObservation("ok", (), 10, 100, T0)


def first_round() -> MemberObservation:
    obs, _ = next_observation(None, "alpha", T0, health=OK, versions=V1, versions_error=None)
    return obs


def test_first_round_builds_the_record() -> None:
    obs = first_round()
    assert obs.member == "alpha"
    assert obs.checked_at == T0
    assert obs.health == OK
    assert obs.versions == V1
    assert obs.versions_at == T0
    assert obs.versions_error is None
    assert obs.last_error is None


def test_first_round_with_only_failures() -> None:
    down = health_failure("connect refused", transport=True, now=T0)
    obs, _ = next_observation(None, "alpha", T0, health=down, versions=None, versions_error="boom")
    assert obs.health == down
    assert obs.versions is None
    assert obs.versions_at is None
    assert obs.versions_error == "boom"
    assert obs.last_error == "versions: boom"


def test_failed_versions_keep_the_last_versions_and_their_timestamp() -> None:
    obs, _ = next_observation(
        first_round(), "alpha", T0 + 10, health=OK, versions=None,
        versions_error="versions answered HTTP 500",
    )  # fmt: skip
    assert obs.versions == V1
    assert obs.versions_at == T0  # the age keeps growing
    assert obs.versions_error == "versions answered HTTP 500"
    assert obs.last_error == "versions: versions answered HTTP 500"
    assert obs.checked_at == T0 + 10
    assert obs.health == OK


def test_successful_versions_replace_the_old_ones_and_clear_the_error() -> None:
    failed, _ = next_observation(
        first_round(), "alpha", T0 + 10, health=None, versions=None, versions_error="timeout"
    )
    obs, _ = next_observation(
        failed, "alpha", T0 + 20, health=None, versions=V2, versions_error=None
    )
    assert obs.versions == V2
    assert obs.versions_at == T0 + 20
    assert obs.versions_error is None
    assert obs.last_error == "versions: timeout"  # the latest error stays visible


def test_recorded_versions_are_a_copy() -> None:
    versions = dict(V2)
    obs, _ = next_observation(None, "a", T0, health=None, versions=versions, versions_error=None)
    versions["binderhub"] = "changed"
    assert obs.versions == V2


def test_failed_health_never_touches_versions() -> None:
    for transport in (True, False):
        failure = health_failure("connect refused", transport=transport, now=T0 + 10)
        obs, _ = next_observation(
            first_round(), "alpha", T0 + 10, health=failure, versions=None, versions_error=None
        )
        assert obs.health == failure
        assert obs.health.status == ("unreachable" if transport else "unhealthy")
        assert obs.versions == V1
        assert obs.versions_at == T0
        assert obs.versions_error is None
        assert obs.last_error == "health: connect refused"


def test_failed_health_with_fresh_versions_records_both() -> None:
    failure = health_failure("connect refused", transport=True, now=T0 + 10)
    obs, _ = next_observation(
        first_round(), "alpha", T0 + 10, health=failure, versions=V2, versions_error=None
    )
    assert obs.health == failure
    assert obs.versions == V2
    assert obs.versions_at == T0 + 10


def test_health_not_due_keeps_the_last_health() -> None:
    unhealthy = HealthObservation("unhealthy", ("check failed: JupyterHub API",), observed_at=T0)
    start, _ = next_observation(None, "a", T0, health=unhealthy, versions=V1, versions_error=None)
    obs, _ = next_observation(start, "a", T0 + 10, health=None, versions=V2, versions_error=None)
    assert obs.health == unhealthy
    assert obs.checked_at == T0 + 10
    assert obs.versions == V2


def test_health_failure() -> None:
    assert health_failure("refused", True, T0) == HealthObservation(
        "unreachable", ("refused",), observed_at=T0
    )
    assert health_failure("HTTP 500", False, T0).status == "unhealthy"


def after_health(health: HealthObservation) -> tuple[MemberObservation, HealthStreak]:
    return next_observation(
        first_round(), "alpha", T0 + 10, health=health, versions=None, versions_error=None,
        streak=HealthStreak(1),
    )  # fmt: skip


def test_health_is_failing() -> None:
    assert not health_is_failing(first_round(), HealthStreak(1))
    full = after_health(HealthObservation("ok", (), 200, 100, T0 + 10))
    assert not health_is_failing(*full)  # full is not failing: keep polling at the normal period
    assert health_is_failing(*after_health(health_failure("x", True, T0 + 10)))
    assert health_is_failing(*after_health(health_failure("x", False, T0 + 10)))
    assert not health_is_failing(MemberObservation("a", T0), HealthStreak())


def test_the_streak_counts_answers_in_a_row_and_waits_out_rounds_without_one() -> None:
    obs, streak = None, HealthStreak()
    seen = []
    for i, answer in enumerate([OK, OK, None, health_failure("x", True, T0), None, OK]):
        obs, streak = next_observation(
            obs, "a", T0 + 10 * i, health=answer, versions=None, versions_error=None,
            streak=streak,
        )  # fmt: skip
        seen.append(streak.count)
    assert seen == [1, 2, 2, -1, -1, 1]


rounds = st.lists(
    st.tuples(
        st.sampled_from(["ok", "unhealthy", "unreachable", "not-due"]),
        st.sampled_from(["new", "failed", "none"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(rounds=rounds)
def test_versions_and_health_evolve_independently(rounds: list[tuple[str, str]]) -> None:
    obs: MemberObservation | None = None
    last_versions: dict[str, str] | None = None
    last_versions_at: float | None = None
    last_health: HealthObservation | None = None
    last_versions_error: str | None = None
    for i, (health_outcome, versions_outcome) in enumerate(rounds):
        now = T0 + 10 * i
        health = {
            "ok": HealthObservation("ok", (), 1, 100, now),
            "unhealthy": health_failure("HTTP 500", False, now),
            "unreachable": health_failure("refused", True, now),
            "not-due": None,
        }[health_outcome]
        versions = {"binderhub": f"v{i}"} if versions_outcome == "new" else None
        error = "timeout" if versions_outcome == "failed" else None
        obs, _ = next_observation(
            obs, "m", now, health=health, versions=versions, versions_error=error
        )
        if versions is not None:
            last_versions, last_versions_at, last_versions_error = versions, now, None
        elif error is not None:
            last_versions_error = error  # "none" (not fetched) changes nothing
        if health is not None:
            last_health = health
        assert obs.checked_at == now
        assert obs.versions == last_versions
        assert obs.versions_at == last_versions_at
        assert obs.health == last_health
        assert obs.versions_error == last_versions_error


def test_prime_reference_ages_out_while_versions_keep_failing() -> None:
    """The checker shell: a prime whose /versions keeps failing makes the reference stale."""
    config = make_config()  # versions max age 30 s
    others = observe_all(config, versions=V1, now=T0 + 40)
    prime, _ = next_observation(None, "alpha", T0, health=OK, versions=V2, versions_error=None)
    for step in (10, 20, 30, 40):
        prime, _ = next_observation(
            prime, "alpha", T0 + step, health=OK, versions=None, versions_error="HTTP 502"
        )
        ref = reference_version(config, others | {"alpha": prime}, T0 + step)
        assert ref.versions == V2
        assert ref.stale == (step > 30)
    view = run(config, others | {"alpha": prime}, now=T0 + 40)
    assert view.gate_suspended
    assert "HTTP 502" in (view.gate_reason or "")
    assert all(m.state == "eligible" for m in view.members)
