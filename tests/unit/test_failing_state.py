"""The ``failing`` state: a member ejected for failing its launches (shared.outcomes decides,
the checker writes it in the record) is excluded until its ejection ends, exactly then and
not before; only a change of the ejection, never of the counts, makes a view evaluate."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from shared.deadline import freshness, record_deadline
from shared.evaluate import evaluate
from shared.records import LaunchOutcomes, MemberObservation
from shared.rules import failing_reason, state_may_change
from tests.support.builders import NOW, make_config, make_obs

REASON = "launches failing: 12 of 20 failed in the last 20s (60% > 25%); ejected for 30s"


def outcomes(until: float | None = NOW + 30, reason: str | None = REASON) -> LaunchOutcomes:
    return LaunchOutcomes(20, 12, 20.0, NOW, ejected_until=until, ejection_reason=reason)


def ejected(obs: MemberObservation, until: float | None = NOW + 30) -> MemberObservation:
    return replace(obs, outcomes=outcomes(until))


def test_an_ejected_member_is_failing_with_the_numbers_that_ejected_it() -> None:
    config = make_config()
    obs = {n: make_obs(n) for n in config.members}
    obs["beta"] = ejected(obs["beta"])
    view = evaluate(config, obs, {}, None, NOW)
    beta = view.member("beta")
    assert beta is not None
    assert (beta.state, beta.reasons, beta.excluded_by) == ("failing", (REASON,), ("failing",))
    assert "beta" not in {t.name for t in view.targets}


def test_failing_comes_after_unhealthy_and_before_full() -> None:
    unhealthy = ejected(make_obs("beta", status="unhealthy"))
    full = ejected(make_obs("beta", pods=95, quota=100))
    config = make_config()
    for obs, states in ((unhealthy, ("unhealthy", "failing")), (full, ("failing", "full"))):
        view = evaluate(config, {"beta": obs}, {}, None, NOW)
        assert view.member("beta").excluded_by == states  # type: ignore[union-attr]


def test_the_ejection_ends_at_its_instant_exactly() -> None:
    obs = ejected(make_obs("beta"), until=NOW + 30)
    assert failing_reason(obs, math.nextafter(NOW + 30, -math.inf)) == REASON
    assert failing_reason(obs, NOW + 30) is None
    assert failing_reason(obs, NOW + 31) is None


def test_no_ejection_no_reason() -> None:
    assert failing_reason(None, NOW) is None
    assert failing_reason(make_obs("beta"), NOW) is None  # metrics not read
    assert failing_reason(ejected(make_obs("beta"), until=None), NOW) is None


def test_an_ejection_without_its_numbers_still_says_why() -> None:
    obs = replace(make_obs("beta"), outcomes=outcomes(reason=None))
    assert failing_reason(obs, NOW) == "ejected: its launches are failing"


@given(st.floats(0.001, 1e6), st.floats(0, 2e6))
def test_the_end_of_an_ejection_is_a_deadline(length: float, before: float) -> None:
    """Routers evaluate again exactly when the ejection ends, and not before."""
    config = make_config(check={"period": 1e7})  # nothing else ages in the range
    until = NOW + length
    obs = ejected(make_obs("beta"), until=until)
    as_of = until - before
    deadline = record_deadline(config, obs, as_of)
    if as_of < until:
        assert deadline == until
        assert freshness(config, obs, math.nextafter(until, -math.inf)).ejected
    else:  # over already: its end is no deadline any more
        assert deadline > until + 1e6
    assert not freshness(config, obs, until).ejected


def test_only_the_ejection_moves_a_state_never_the_counts() -> None:
    headroom = 10
    plain = make_obs("beta")
    counted = replace(plain, outcomes=LaunchOutcomes(20, 1, 20.0, NOW))
    recounted = replace(plain, outcomes=LaunchOutcomes(40, 2, 20.0, NOW + 10))
    out = ejected(plain)
    assert not state_may_change(plain, counted, headroom)  # counts appear: no state moves
    assert not state_may_change(counted, recounted, headroom)
    assert state_may_change(counted, out, headroom)  # ejected
    assert state_may_change(out, counted, headroom)  # ejection lifted early (a new writer)
    assert state_may_change(out, ejected(plain, until=NOW + 60), headroom)  # lengthened
    reworded = replace(plain, outcomes=replace(outcomes(), ejection_reason="other numbers"))
    assert state_may_change(out, reworded, headroom)
