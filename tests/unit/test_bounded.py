"""Bounded-load rendezvous (shared/bounded.py): a repository's order, each member's bound,
the first member below it, and the window of recent launches the bounds are taken over."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.balance import Target, rendezvous_pick, rendezvous_score
from shared.bounded import (
    STEPS,
    UNBOUNDED,
    Candidate,
    LaunchWindow,
    Load,
    MemberLoad,
    bound,
    bounded_pick,
    first_within_bound,
    member_loads,
    rendezvous_order,
    room,
    with_limits,
)
from tests.support.builders import target

THREE = [target("alpha", 50), target("beta", 40), target("gamma", 30)]
NAMES = ("alpha", "beta", "gamma", "delta", "eps", "zeta")
targets_st = st.lists(
    st.builds(target, st.sampled_from(NAMES), st.sampled_from([0, 0.5, 1, 3, 10, 50, 100])),
    max_size=6,
    unique_by=lambda t: t.name,
)
keys_st = st.text("abcdefgh/-_.019", max_size=20).map(lambda s: "/build/gh/" + s)


class Window:
    """Launches in a window, given by hand (``shared.bounded.Launches``)."""

    def __init__(self, counts: dict[str, int], total: int | None = None) -> None:
        self.counts = counts
        self.total = sum(counts.values()) if total is None else total


# --- the order ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(key=keys_st, targets=targets_st)
def test_the_order_starts_with_the_rendezvous_pick_and_holds_every_weighted_target(
    key: str, targets: list[Target]
) -> None:
    order = rendezvous_order(key, targets)
    assert (order[0] if order else None) == rendezvous_pick(key, targets)
    assert sorted(t.name for t in order) == sorted(t.name for t in targets if t.weight > 0)
    ranks = [(rendezvous_score(key, t), t.name) for t in order]
    assert ranks == sorted(ranks, reverse=True)


def test_the_order_is_by_score_and_leaves_out_weight_zero() -> None:
    key = "/build/gh/org/repo"
    order = rendezvous_order(key, [*THREE, target("zero", 0)])
    scores = [rendezvous_score(key, t) for t in order]
    assert scores == sorted(scores, reverse=True) and len(order) == 3
    assert rendezvous_order(key, []) == ()
    assert rendezvous_order(key, [target("zero", 0)]) == ()


def test_equal_scores_go_to_the_greatest_name_first() -> None:
    # an infinite weight scores inf wherever the hash is not 0: every member ties on score
    huge = [target(name, math.inf) for name in ("b", "c", "a")]
    order = rendezvous_order("/build/gh/org/repo", huge)
    assert all(math.isinf(rendezvous_score("/build/gh/org/repo", t)) for t in huge)
    assert [t.name for t in order] == ["c", "b", "a"]


# --- the bound -------------------------------------------------------------------------------


def test_limits_are_the_factor_times_the_weighted_share() -> None:
    assert with_limits(THREE, 1.2) == (
        Candidate("alpha", 1.2 * 50 / 120),
        Candidate("beta", 1.2 * 40 / 120),
        Candidate("gamma", 1.2 * 30 / 120),
    )
    assert with_limits([], 1.25) == ()
    # the same limits in any order of the members (the sum is exact)
    odd = [target("a", 0.1), target("b", 0.2), target("c", 0.3)]
    assert dict(with_limits(odd, 1.5)) == dict(with_limits(odd[::-1], 1.5))


@pytest.mark.parametrize(
    ("limit", "launches", "expected"),
    [
        (0.5, 3, 2),  # 0.5 x 4
        (0.5, 4, 3),  # 0.5 x 5 = 2.5, rounded up
        (0.25, 0, 1),  # the first launch: every member may take one
        (0.01, 0, 1),
        (1.25, 9, 13),  # 12.5
        (0.4, 9, 4),
    ],
)
def test_a_bound_is_the_limit_times_the_launches_plus_one_rounded_up(
    limit: float, launches: int, expected: int
) -> None:
    assert bound(limit, launches) == expected


@settings(max_examples=500, deadline=None)
@given(
    limits=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=5),
    counts=st.lists(st.integers(0, 40), min_size=5, max_size=5),
    total=st.integers(0, 120),
)
def test_the_first_within_bound_is_the_first_below_its_bound(
    limits: list[float], counts: list[int], total: int
) -> None:
    order = [Candidate(NAMES[i], limit) for i, limit in enumerate(limits)]
    launched = {NAMES[i]: n for i, n in enumerate(counts) if n}
    below = [i for i, c in enumerate(order) if launched.get(c.member, 0) < bound(c.limit, total)]
    assert first_within_bound(order, launched, total) == (below[0] if below else None)


def test_a_member_at_its_bound_is_passed_over_and_one_below_is_chosen() -> None:
    order = [Candidate("alpha", 0.5), Candidate("beta", 0.5), Candidate("gamma", 0.5)]
    # 9 launches in the window: each bound is ceil(0.5 x 10) = 5
    assert first_within_bound(order, {"alpha": 5, "beta": 4}, 9) == 1
    assert first_within_bound(order, {"alpha": 4, "beta": 5}, 9) == 0
    assert first_within_bound(order, {"alpha": 5, "beta": 5}, 10) == 0  # bound 6 with 10
    assert first_within_bound(order, {"alpha": 5, "beta": 5, "gamma": 5}, 9) is None
    assert first_within_bound(order, {}, 0) == 0
    assert first_within_bound([], {}, 0) is None


@settings(max_examples=300, deadline=None)
@given(
    key=keys_st,
    targets=targets_st,
    factor=st.floats(1.01, 3.0),
    counts=st.lists(st.integers(0, 30), min_size=6, max_size=6),
    extra=st.integers(0, 30),
)
def test_some_member_is_always_below_its_bound(
    key: str, targets: list[Target], factor: float, counts: list[int], extra: int
) -> None:
    """The bounds add up to factor x (n + 1) > n: whatever a window holds (launches of
    members no longer targets among them), some target is below its bound."""
    launched = dict(zip(NAMES, counts, strict=True))
    window = Window(launched, sum(counts) + extra)
    order = rendezvous_order(key, targets)
    chosen = bounded_pick(key, targets, factor, window)
    if not order:
        assert chosen is None
        return
    found = first_within_bound(with_limits(order, factor), window.counts, window.total)
    assert found is not None and chosen == order[found]


def test_without_launches_the_pick_is_the_rendezvous_pick() -> None:
    for i in range(50):
        key = f"/build/gh/org/repo{i}"
        assert bounded_pick(key, THREE, 1.25, None) == rendezvous_pick(key, THREE)
        assert bounded_pick(key, THREE, 1.25, Window({})) == rendezvous_pick(key, THREE)
    assert bounded_pick("/build/gh/org/repo", [], 1.25, None) is None
    assert bounded_pick("/build/gh/org/repo", [target("zero", 0)], 1.25, Window({})) is None


def test_a_member_past_its_bound_passes_the_launch_to_the_next_in_the_order() -> None:
    key = "/build/gh/org/hot"
    first, second, third = rendezvous_order(key, THREE)
    limits = dict(with_limits(THREE, 1.25))
    total = 100
    at_bound = bound(limits[first.name], total)
    assert bounded_pick(key, THREE, 1.25, Window({first.name: at_bound - 1}, total)) == first
    assert bounded_pick(key, THREE, 1.25, Window({first.name: at_bound}, total)) == second
    full = {first.name: at_bound, second.name: bound(limits[second.name], total)}
    assert bounded_pick(key, THREE, 1.25, Window(full, total)) == third
    # a window that counts more than its total (never one LaunchWindow keeps): the first
    everyone = {t.name: 1000 for t in THREE}
    assert bounded_pick(key, THREE, 1.25, Window(everyone, 10)) == first


@settings(max_examples=100, deadline=None)
@given(
    hot=st.lists(st.integers(0, 3), min_size=1, max_size=300),
    factor=st.sampled_from([1.1, 1.25, 2.0]),
)
def test_no_member_takes_more_than_its_bound_of_the_window(hot: list[int], factor: float) -> None:
    """Launches of a few repositories (one of them very hot) through one window: after each
    launch, the member it went to holds at most ceil(factor x share x launches)."""
    window = LaunchWindow(60.0)
    limits = dict(with_limits(THREE, factor))
    for i, repo in enumerate(hot):
        window.advance(float(i))
        chosen = bounded_pick(f"/build/gh/org/repo{repo}", THREE, factor, window)
        assert chosen is not None
        window.add(chosen.name)
        assert window.counts[chosen.name] <= math.ceil(limits[chosen.name] * window.total)


# --- what pages show ----------------------------------------------------------------------------


def test_member_loads_give_each_member_its_part_of_the_window() -> None:
    window = Window({"alpha": 6, "beta": 2, "gone": 2})
    loads = member_loads([*THREE, target("zero", 0)], 1.25, window)
    limits = dict(with_limits(THREE, 1.25))
    assert loads == {
        "alpha": MemberLoad(6, 0.6, 50 / 120, bound(limits["alpha"], 10)),
        "beta": MemberLoad(2, 0.2, 40 / 120, bound(limits["beta"], 10)),
        "gamma": MemberLoad(0, 0.0, 30 / 120, bound(limits["gamma"], 10)),
        "gone": MemberLoad(2, 0.2, None, None),  # launched, no longer a target
    }
    assert loads["alpha"].bound == math.ceil(1.25 * 50 / 120 * 11)
    assert member_loads(THREE, 1.25, Window({}))["alpha"] == MemberLoad(
        0, None, 50 / 120, math.ceil(1.25 * 50 / 120)
    )
    assert member_loads([], 1.25, Window({"a": 1})) == {"a": MemberLoad(1, 1.0, None, None)}
    # a weight below 1 is a weight (the fallback's prime weighs 1, a config may say 0.5)
    light = member_loads([target("a", 0.5), target("b", 1.5)], 2.0, Window({"a": 1}))
    assert light["a"] == MemberLoad(1, 1.0, 0.25, bound(2.0 * 0.5 / 2.0, 1))


# --- the window -------------------------------------------------------------------------------


def launch(window: LaunchWindow, at: float, member: str = "alpha") -> None:
    window.advance(at)
    window.add(member)


def test_a_launch_stays_for_the_window_and_leaves_within_one_step_more() -> None:
    window = LaunchWindow(50.0)  # steps of 1 s
    assert window.step == 50.0 / STEPS == 1.0
    launch(window, 0.0)  # its bucket ends at 1.0
    launch(window, 0.5, "beta")  # the same bucket
    window.advance(50.99)
    assert window.counts == {"alpha": 1, "beta": 1} and window.total == 2
    window.advance(51.0)  # the bucket ended 50 s ago
    assert window.counts == {} and window.total == 0


def test_a_launch_at_the_end_of_a_bucket_starts_the_next() -> None:
    window = LaunchWindow(50.0)
    launch(window, 0.0)  # bucket [0, 1)
    launch(window, 1.0, "beta")  # bucket [1, 2)
    window.advance(51.0)
    assert window.counts == {"beta": 1} and window.total == 1
    window.advance(51.9)
    assert window.counts == {"beta": 1}
    window.advance(52.0)
    assert window.counts == {} and window.total == 0


def test_counts_leave_by_member_and_keep_the_rest() -> None:
    window = LaunchWindow(25.0)  # steps of 0.5 s
    for _ in range(3):
        launch(window, 0.0, "alpha")
    launch(window, 0.0, "beta")
    launch(window, 4.0, "alpha")
    launch(window, 4.0, "gamma")
    window.advance(25.4)
    assert window.counts == {"alpha": 4, "beta": 1, "gamma": 1} and window.total == 6
    window.advance(25.5)
    assert window.counts == {"alpha": 1, "gamma": 1} and window.total == 2


def test_advancing_before_anything_is_due_changes_nothing() -> None:
    window = LaunchWindow(50.0)
    launch(window, 5.0)
    assert window.due == 6.0  # the newest bucket ends
    launch(window, 5.9)
    window.advance(7.0)
    # the oldest (and only) bucket leaves at 56.0; the newest ends at 8.0
    assert window.due == 8.0
    window.advance(55.99)  # a new (empty) bucket, ending at 56.99
    assert window.counts == {"alpha": 2} and window.due == 56.0
    window.advance(56.0)
    assert window.counts == {} and window.due == 55.99 + 1.0


def test_a_long_quiet_spell_empties_the_window() -> None:
    window = LaunchWindow(60.0)
    for i in range(100):
        launch(window, i * 0.7, "alpha" if i % 3 else "beta")
    window.advance(10_000.0)
    assert window.counts == {} and window.total == 0
    launch(window, 10_000.5, "gamma")
    assert window.counts == {"gamma": 1} and window.total == 1


def test_launches_counted_before_any_time_leave_with_the_first_bucket() -> None:
    window = LaunchWindow(60.0)  # steps of 1.2 s
    window.add("alpha")
    assert window.counts == {"alpha": 1} and window.total == 1
    window.advance(0.0)  # the first bucket: [0, 1.2)
    launch(window, 1.2, "beta")  # the next
    assert window.counts == {"alpha": 1, "beta": 1} and window.total == 2
    window.advance(61.2)  # the first bucket ended 60 s ago
    assert window.counts == {"beta": 1} and window.total == 1


def test_a_move_that_forgets_launches_works_every_room_out_again() -> None:
    window = LaunchWindow(6.0)  # steps of 0.12 s
    window.set_limits(dict(with_limits(THREE, 1.25)))
    for at, member in [(0.0, "alpha"), (0.0, "alpha"), (0.0, "beta"), (3.0, "gamma")]:
        launch(window, at, member)
    window.advance(6.2)  # the launches at 0.0 leave
    counts, total = window.counts, window.total
    assert counts == {"gamma": 1}
    rooms = {m: room(load.limit, counts.get(m, 0), total) for m, load in window.loads.items()}
    assert {m: load.room for m, load in window.loads.items()} == rooms


def test_a_member_without_a_limit_has_no_room_and_is_never_chosen() -> None:
    window = LaunchWindow(60.0)
    window.advance(0.0)
    window.add("beta")
    window.set_limits({"alpha": 0.9})  # beta is no target now
    beta, stranger = window.load("beta"), window.load("stranger")  # stranger: never limited
    assert (beta.limit, beta.room) == (0.0, 0) and (stranger.limit, stranger.room) == (0.0, 0)
    assert window.take([beta, stranger]) is None
    assert window.take([beta, stranger, window.load("alpha")]) == 2


def test_a_clock_stepping_back_loses_no_launch() -> None:
    window = LaunchWindow(50.0)
    launch(window, 100.0)
    launch(window, 50.0, "beta")  # earlier than seen: counted in the newest bucket
    assert window.counts == {"alpha": 1, "beta": 1}
    window.advance(150.99)
    assert window.total == 2
    window.advance(151.0)
    assert window.total == 0


def test_a_resized_window_keeps_its_launches_for_the_new_length() -> None:
    window = LaunchWindow(100.0)
    launch(window, 0.0)  # bucket ends at 2.0
    window.resize(25.0)
    assert window.seconds == 25.0 and window.step == 0.5
    window.advance(26.99)  # starts a bucket of the new step: [26.99, 27.49)
    assert window.counts == {"alpha": 1}
    window.advance(27.0)
    assert window.counts == {}
    launch(window, 27.0, "beta")
    window.advance(52.48)
    assert window.counts == {"beta": 1}
    window.advance(52.49)
    assert window.counts == {}


@settings(max_examples=200, deadline=None)
@given(
    seconds=st.sampled_from([1.0, 6.0, 60.0]),
    events=st.lists(
        st.tuples(st.floats(0.0, 5.0), st.sampled_from(["alpha", "beta", "gamma"])),
        max_size=120,
    ),
)
def test_the_window_holds_the_last_seconds_and_nothing_a_step_older(
    seconds: float, events: list[tuple[float, str]]
) -> None:
    window = LaunchWindow(seconds)
    made: list[tuple[float, str]] = []
    now = 0.0
    for gap, member in events:
        now += gap
        launch(window, now, member)
        made.append((now, member))
        counted = Counter(window.counts)
        recent = Counter(m for at, m in made if now - at < seconds)
        kept = Counter(m for at, m in made if now - at < seconds + window.step)
        assert recent <= counted <= kept
        assert window.total == sum(counted.values()) and 0 not in counted.values()


def loads_of(window: LaunchWindow, order: Sequence[Candidate]) -> list[Load]:
    """``order``'s members' parts of ``window``, with its limits (every other member: 0)."""
    window.set_limits({c.member: c.limit for c in order})
    return [window.load(c.member) for c in order]


@settings(max_examples=300, deadline=None)
@given(
    limits=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=4),
    launched=st.lists(st.sampled_from(NAMES[:5]), max_size=40),
)
def test_take_is_the_rule_and_counts_the_launch(limits: list[float], launched: list[str]) -> None:
    window = LaunchWindow(60.0)
    window.advance(1.0)
    for member in launched:
        launch(window, 1.0, member)
    order = [Candidate(NAMES[i], limit) for i, limit in enumerate(limits)]
    before, total = dict(window.counts), window.total
    expected = first_within_bound(order, before, total)
    assert window.take(loads_of(window, order)) == expected
    if expected is None:
        assert window.counts == before and window.total == total
    else:
        chosen = order[expected].member
        assert window.counts == {**before, chosen: before.get(chosen, 0) + 1}
        assert window.total == total + 1
        window.advance(61.0 + window.step)  # the launch leaves with its bucket
        assert window.total == 0 and window.counts == {}


def test_a_take_names_the_first_below_its_bound_and_counts_it_alone() -> None:
    window = LaunchWindow(60.0)
    window.advance(0.0)
    for member, n in (("alpha", 10), ("beta", 8)):
        for _ in range(n):
            window.add(member)
    alpha, beta, gamma = loads_of(window, with_limits(THREE, 1.25))  # 0.52, 0.42, 0.31
    assert (alpha.room, beta.room) == (0, 0)  # 10 of 19 (9.9), 8 of 19 (7.9): at their bounds
    assert window.take([alpha, beta, gamma]) == 2
    assert window.counts == {"alpha": 10, "beta": 8, "gamma": 1} and window.total == 19
    assert gamma.room == 8  # 1 + j < 0.3125 x (20 + j) up to j = 7


def test_take_of_an_empty_order_counts_nothing() -> None:
    window = LaunchWindow(60.0)
    launch(window, 1.0)
    assert window.take(()) is None
    assert window.counts == {"alpha": 1} and window.total == 1


# --- rooms ------------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(
    limit=st.one_of(st.floats(0.0, 1.5), st.sampled_from([0.0, 0.25, 0.5, 1 / 3, 0.999, 1.0])),
    launches=st.integers(0, 10_000),
    others=st.integers(0, 10_000),
)
def test_a_room_is_the_launches_in_a_row_the_rule_allows(
    limit: float, launches: int, others: int
) -> None:
    total = launches + others
    r = room(limit, launches, total)
    if limit >= 1.0:
        assert r == UNBOUNDED
        return
    assert r >= 0
    for j in (0, r - 1, r // 2):  # the first, the last and one between are allowed
        if 0 <= j < r:
            assert launches + j < limit * (total + j + 1)
    assert not launches + r < limit * (total + r + 1)  # the next one is not


def allowed_in_a_row(limit: float, launches: int, total: int) -> int:
    """The room counted launch by launch, as the rule compares."""
    j = 0
    while launches + j < limit * (total + j + 1):
        j += 1
    return j


@pytest.mark.parametrize(
    ("limit", "launches", "total", "expected"),
    [
        (0.4, 19, 1035, 659),  # the closed form, rounded, says 660
        (0.8, 847, 1094, 145),  # ... 146
        (0.14, 9, 1255, 195),  # ... 194
        (0.54, 362, 1925, 1475),  # ... 1474
    ],
)
def test_a_room_is_exact_where_the_closed_form_rounds_off_by_one(
    limit: float, launches: int, total: int, expected: int
) -> None:
    assert room(limit, launches, total) == expected == allowed_in_a_row(limit, launches, total)


def test_rooms_by_hand() -> None:
    assert room(0.5, 0, 0) == 1  # 0 < 0.5; then 1 of 2: not below 1.0
    assert room(0.5, 2, 10) == 7  # 2 + j < 0.5 x (11 + j) up to j = 6
    assert room(0.5, 6, 10) == 0  # 6 is past 5.5
    assert room(0.0, 0, 5) == 0  # no target
    assert room(1.0, 99, 99) == UNBOUNDED


@settings(max_examples=200, deadline=None)
@given(
    factor=st.sampled_from([1.0, 1.05, 1.25, 2.0]),
    events=st.lists(
        st.tuples(
            st.floats(0.0, 3.0),
            st.permutations(THREE),
            st.sampled_from(["launch", "launch", "launch", "sticky", "advance"]),
        ),
        max_size=150,
    ),
)
def test_a_launch_its_first_members_room_takes_is_the_rules_pick(
    factor: float, events: list[tuple[float, list[Target], str]]
) -> None:
    """The router's way: a launch goes to its order's first while its room is above 0
    (counted alone, moving nothing), else the window is moved and walked. Every launch
    names what the rule names for the window as it stands; sticky launches may go past a
    bound, and the window moves between launches too."""
    window = LaunchWindow(6.0)
    window.set_limits(dict(with_limits(THREE, factor)))
    now = 0.0
    for gap, targets, kind in events:
        now += gap
        loads = [window.load(t.name) for t in targets]
        if kind == "advance":
            window.advance(now)
        elif kind == "sticky":
            window.add(targets[0].name)
        else:
            order = [Candidate(t.name, load.limit) for t, load in zip(targets, loads, strict=True)]
            if loads[0].room > 0:
                assert first_within_bound(order, window.counts, window.total) == 0
                window.add(targets[0].name)
            else:
                window.advance(now)
                expected = first_within_bound(order, window.counts, window.total)
                assert window.take(loads) == expected
                assert expected is not None  # the bounds add up to more than the window holds
        for load in window.loads.values():  # every room is what it promises
            counts, total = window.counts, window.total
            assert (load.room > 0) <= (counts.get(load.member, 0) < load.limit * (total + 1))
