"""The start of a member's slow start, as the checker stamps it on each record it publishes
(shared.slowstart.next_eligible_since, in_rotation): when its view last found the member
eligible after an exclusion, or new; None while it is excluded."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from shared.evaluate import STATES
from shared.observe import next_observation
from shared.records import HealthObservation, MemberObservation
from shared.slowstart import in_rotation, next_eligible_since
from tests.support.builders import NOW, V1

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


def test_a_first_record_has_no_start_until_the_checker_stamps_it() -> None:
    obs, _ = next_observation(None, "alpha", NOW, health=OK, versions=V1, versions_error=None)
    assert obs.eligible_since is None
