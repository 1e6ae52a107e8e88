"""Judging again only the members whose launches moved (shared.keeper.rejudge): a router
whose launch uses up a member's room, or whose count of a full member restarts at a newer
report, pays for that member alone and serves the view a whole evaluation gives."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.capacity import SentLaunches
from shared.config import parse_config
from shared.keeper import rejudge
from shared.records import CheckerHeartbeat
from shared.slowstart import ramp_factor
from shared.store import Snapshot
from tests.support.builders import NAMES, NOW, V2, federations, make_config, make_obs, observe_all

Case = tuple[Snapshot, SentLaunches, SentLaunches, frozenset[str]]


@st.composite
def launches_moved(draw: st.DrawFn) -> Case:
    """A random federation's snapshot, the launches a router sent since each report, and
    the same launches but for some members' counts (those members returned too)."""
    raw, observations, drains = draw(federations())
    config = parse_config(raw | {"slow_start": draw(st.sampled_from([0.0, 300.0]))}, "h")
    snap = Snapshot(config, observations, CheckerHeartbeat("c1", NOW), drains)
    counts = st.dictionaries(st.sampled_from(NAMES), st.integers(0, 30))
    before, moved_counts = draw(counts), draw(counts)
    routers = draw(st.integers(1, 4))
    after = SentLaunches({**before, **moved_counts}, routers)
    return snap, SentLaunches(before, routers), after, frozenset(moved_counts)


@settings(max_examples=300, deadline=None)
@given(launches_moved())
def test_judging_again_the_members_whose_launches_moved_is_a_whole_evaluation(
    case: Case,
) -> None:
    snap, before, after, moved = case
    view = snap.evaluate(NOW, before)
    whole = snap.evaluate(NOW, after)
    again = rejudge(view, snap, after, moved, NOW)
    if again is None:  # only where gating was or is now suspended: more may move
        assert view.gate_suspended or whole.gate_suspended
    else:
        assert again == whole
        assert not (view.gate_suspended or whole.gate_suspended)
        for old, new in zip(view.members, again.members, strict=True):
            assert new is old or old.name in moved  # the others are not judged again


def test_a_member_whose_room_ran_out_alone_turns_full() -> None:
    config = make_config(pod_headroom=0, slow_start=0)
    snap = Snapshot(config, observe_all(config, pods=95), CheckerHeartbeat("c1", NOW))
    view = snap.evaluate(NOW)
    again = rejudge(view, snap, SentLaunches({"beta": 5}, 1), frozenset({"beta"}), NOW)
    assert again is not None
    assert [m.state for m in again.members] == ["eligible", "full", "eligible"]
    assert [t.name for t in again.targets] == ["alpha", "gamma"]
    assert again.members[0] is view.members[0] and again.members[2] is view.members[2]


def test_a_member_full_alone_under_gating_is_judged_whole() -> None:
    """alpha (the prime) holds the reference; beta and gamma run another version: gating
    leaves alpha alone, and alpha full would leave nobody but version mismatches."""
    config = make_config(pod_headroom=0, slow_start=0)
    observations = observe_all(config, pods=95)
    observations |= {n: make_obs(n, pods=95, versions=V2) for n in ("beta", "gamma")}
    snap = Snapshot(config, observations, CheckerHeartbeat("c1", NOW))
    view = snap.evaluate(NOW)
    assert [t.name for t in view.targets] == ["alpha"]
    assert rejudge(view, snap, SentLaunches({"alpha": 5}, 1), frozenset({"alpha"}), NOW) is None


def test_a_member_full_alone_later_is_what_a_whole_evaluation_then_gives() -> None:
    """Judged again later than the view, with a newer heartbeat: the time of the view, its
    heartbeat and the reference's age are the new evaluation's; beta's ramp is judged as of
    that heartbeat (step 4 of 10), not of the wall clock 20 s later (step 5)."""
    config = make_config(pod_headroom=0, slow_start=300, fallback="all")
    observations = observe_all(config, pods=95)
    observations["beta"] = replace(observations["beta"], eligible_since=NOW - 110)
    view = Snapshot(config, observations, CheckerHeartbeat("c1", NOW)).evaluate(NOW)
    later = Snapshot(config, observations, CheckerHeartbeat("c1", NOW + 20))
    moved = SentLaunches({"beta": 2}, 1)  # 3 pods left: still eligible, and ramping
    again = rejudge(view, later, moved, frozenset({"beta"}), NOW + 40)
    assert again == later.evaluate(NOW + 40, moved)
    assert (again.evaluated_at, again.heartbeat) == (NOW + 40, later.heartbeat)
    assert again.reference.age == view.reference.age + 40
    assert again.member("beta").ramp == ramp_factor(4)  # type: ignore[union-attr]
    # every member full: the fallback set takes the launches, as a whole evaluation says
    full = SentLaunches({name: 5 for name in config.members}, 1)
    everyone = frozenset(config.members)
    fallback = rejudge(view, later, full, everyone, NOW + 40)
    assert fallback is not None and fallback.fallback_active
    assert fallback == later.evaluate(NOW + 40, full)


def test_a_view_in_an_outage_is_judged_whole() -> None:
    config = make_config(pod_headroom=0, slow_start=0)
    snap = Snapshot(config, observe_all(config, pods=95), CheckerHeartbeat("c1", NOW - 1000))
    view = snap.evaluate(NOW)
    assert view.outage_active
    assert rejudge(view, snap, SentLaunches({"beta": 5}, 1), frozenset({"beta"}), NOW) is None
