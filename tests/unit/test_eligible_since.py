"""The start of a member's slow start, as the checker stamps it on each record it publishes
(shared.slowstart.next_eligible_since, in_rotation): when its view last found the member
eligible after an exclusion, or new; None while it is excluded."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from shared.deadline import freshness
from shared.evaluate import STATES, evaluate
from shared.observe import next_observation
from shared.records import CheckerHeartbeat, HealthObservation, MemberObservation
from shared.slowstart import FLOOR, in_rotation, next_eligible_since
from tests.support.builders import NOW, V1, drain, make_config, make_obs

instants = st.floats(0.0, 2e9, allow_nan=False)
published = st.none() | instants


@given(published=published, has_record=st.booleans(), now=instants)
def test_an_excluded_member_has_no_start(
    published: float | None, has_record: bool, now: float
) -> None:
    assert next_eligible_since(published, has_record, False, now) is None


@given(published=instants, now=instants)
def test_a_member_that_stays_eligible_keeps_its_start(published: float, now: float) -> None:
    assert next_eligible_since(published, True, True, now) == published


@given(now=instants)
def test_a_member_eligible_again_starts_now(now: float) -> None:
    assert next_eligible_since(None, True, True, now) == now


@given(published=published, now=instants)
def test_a_new_member_starts_now(published: float | None, now: float) -> None:
    """A member the checker has no record of (new in the config, or a fresh federation's)."""
    assert next_eligible_since(None, False, True, now) == now
    assert next_eligible_since(published, False, True, now) == now


@given(st.lists(st.booleans(), min_size=1, max_size=30))
def test_the_start_is_the_first_check_of_the_latest_unbroken_run(eligible: list[bool]) -> None:
    """Stamped at every publish (one a second here), each from the one before: the start
    is when the member's current run of eligible views began, None while excluded."""
    since: float | None = None
    for i, now_eligible in enumerate(eligible):
        since = next_eligible_since(since, i > 0, now_eligible, NOW + i)
        run_began = next((NOW + j for j in range(i, -1, -1) if j == 0 or not eligible[j - 1]), NOW)
        assert since == (run_began if now_eligible else None)


@given(st.lists(st.sampled_from(STATES[:-1]), unique=True))
def test_only_being_full_keeps_a_member_in_rotation(excluded_by: list[str]) -> None:
    """A full member that has room again goes on where its ramp was; after any other
    exclusion (with or without being full) it ramps again."""
    assert in_rotation(excluded_by) == (set(excluded_by) <= {"full"})


OK = HealthObservation("ok", (), 10, 100, NOW)


@given(
    since=published,
    health=st.sampled_from([None, OK, replace(OK, status="unhealthy", reasons=("boom",))]),
    versions=st.sampled_from([None, V1, {"binderhub": "2"}]),
)
def test_a_round_of_checks_keeps_the_start(
    since: float | None, health: HealthObservation | None, versions: dict[str, str] | None
) -> None:
    """Only the checker's publish moves the start: a record rebuilt by a round of checks
    (its health, its versions, whatever they say) carries it over."""
    previous = MemberObservation("alpha", NOW, OK, versions=V1, versions_at=NOW)
    previous = replace(previous, eligible_since=since)
    obs, _ = next_observation(
        previous, "alpha", NOW + 5, health=health, versions=versions, versions_error=None
    )
    assert obs.eligible_since == since


@given(slow_start=st.floats(1.0, 3600.0), later=st.floats(0.0, 1e6))
def test_a_member_eligible_before_the_checker_stamps_its_start_ramps_from_the_floor(
    slow_start: float, later: float
) -> None:
    """A drain lifted between two publishes: routers find it eligible while its record
    still says excluded (no start). It takes the floor, not its full weight, and time
    alone moves nothing until the checker publishes the start."""
    config = make_config({"alpha": 10, "beta": 10}, prime=None, slow_start=slow_start)
    records = {n: replace(make_obs(n, quota=None), eligible_since=0.0) for n in ("alpha", "beta")}
    records["beta"] = replace(records["beta"], eligible_since=None)
    view = evaluate(config, records, {}, CheckerHeartbeat("c", NOW), NOW)
    beta = view.member("beta")
    assert beta is not None and beta.eligible
    assert (beta.ramp, beta.effective_weight, beta.eligible_since) == (FLOOR, 10 * FLOOR, NOW)
    assert freshness(config, records["beta"], NOW + later).ramp == 1.0  # no step ahead
    as_of = NOW + later  # the checker's publish: the floor goes on from its start
    stamped = {n: replace(make_obs(n, as_of, quota=None), eligible_since=0.0) for n in records}
    stamped["beta"] = replace(stamped["beta"], eligible_since=as_of)
    view = evaluate(config, stamped, {}, CheckerHeartbeat("c", as_of), as_of)
    assert view.member("beta").ramp == FLOOR  # type: ignore[union-attr]


def test_an_excluded_member_shows_no_start() -> None:
    config = make_config({"alpha": 10, "beta": 10}, prime=None, slow_start=300)
    records = {n: replace(make_obs(n, quota=None), eligible_since=None) for n in ("alpha", "beta")}
    view = evaluate(config, records, {"beta": drain("beta")}, CheckerHeartbeat("c", NOW), NOW)
    beta = view.member("beta")
    assert beta is not None and beta.state == "drained"
    assert (beta.eligible_since, beta.ramp, beta.effective_weight) == (None, None, 0.0)


def test_no_floor_with_slow_start_off() -> None:
    config = make_config({"alpha": 10}, prime=None, slow_start=0)
    records = {"alpha": replace(make_obs("alpha", quota=None), eligible_since=None)}
    alpha = evaluate(config, records, {}, CheckerHeartbeat("c", NOW), NOW).member("alpha")
    assert alpha is not None and (alpha.ramp, alpha.effective_weight) == (None, 10)
