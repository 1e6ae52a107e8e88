"""The routing table under ``load_balancer: bounded``: each repository's order kept per
generation, each launch walked against the router's window and counted in it, the window
outliving every table."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from router.routes import NOBODY, ORDER_KEPT, LoadBound, RoutingTable
from shared.balance import cache_key
from shared.bounded import LaunchWindow, rendezvous_order, with_limits
from shared.evaluate import View, balance
from tests.support.builders import FULL_PODS, make_config, observe_all
from tests.support.views import run

THREE = {"alpha": 50.0, "beta": 40.0, "gamma": 30.0}
TEN = {f"m{i}": 10.0 + i for i in range(10)}
HOT = "/build/gh/org/hot/HEAD"


class Clock:
    """A clock the test moves."""

    def __init__(self, at: float = 1000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def bounded(weights: dict[str, float] = THREE, full: tuple[str, ...] = (), **settings: Any) -> View:
    settings = {"load_balancer": "bounded", **settings}
    config = make_config(weights, prime=next(iter(weights)), **settings)
    observations = observe_all(config)
    for name in full:
        observations[name] = observe_all(config, pods=FULL_PODS)[name]
    return run(config, observations)


def scope(path: str, cookie: str | None = None) -> dict[str, Any]:
    headers = [(b"host", b"router.example.org")]
    if cookie is not None:
        headers.append((b"cookie", f"host={cookie}".encode()))
    return {
        "type": "http",
        "method": "GET",
        "http_version": "1.1",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
    }


def member_of(table: RoutingTable, path: str, cookie: str | None = None) -> str:
    status, headers, _ = table.answer(scope(path, cookie))
    assert status == 307
    location = dict(headers)[b"location"].decode()
    found = [t.name for t in table.view.targets if location == t.url + path]
    assert len(found) == 1, location
    return found[0]


def order_of(view: View, path: str) -> list[str]:
    return [t.name for t in rendezvous_order(cache_key(path), view.targets)]


def test_a_hot_repository_spills_over_to_the_next_in_its_order_past_its_bound() -> None:
    clock = Clock()
    view = bounded()
    table = RoutingTable(view, load=LoadBound(clock))
    first, second, third = order_of(view, HOT)
    limits = dict(with_limits(view.targets, 1.25))
    sent: Counter[str] = Counter()
    for i in range(400):
        clock.at = 1000.0 + i * 0.01  # all within one window
        member = member_of(table, HOT)
        sent[member] += 1
        window = table.load.window
        assert window.counts[member] <= -(-limits[member] * window.total // 1)  # ceil
    # the first two took all they may: their bounds of the 400 launches, give or take one;
    # the third, below its bound throughout, the rest
    assert abs(sent[first] - limits[first] * 400) <= 1
    assert abs(sent[second] - limits[second] * 400) <= 1
    assert sent[third] == 400 - sent[first] - sent[second] < limits[third] * 400
    assert table.load.passed_over[first] == 400 - sent[first]
    assert table.load.passed_over[second] == sent[third]
    assert third not in table.load.passed_over
    # the redirects are counted by the member they went to, as the balancer's
    assert table.counts() == {(m, "balancer"): n for m, n in sent.items()}


def test_a_huge_factor_answers_as_rendezvous() -> None:
    clock = Clock()
    lax = bounded(bounded_load={"factor": 1e9, "window": 60})
    rendezvous = run(
        make_config(THREE, load_balancer="rendezvous"), observe_all(make_config(THREE))
    )
    table = RoutingTable(lax, load=LoadBound(clock))
    for i in range(500):
        clock.at += 0.01
        path = HOT if i % 2 else f"/build/gh/org/repo{i}/HEAD"
        assert member_of(table, path) == rendezvous.pick(path).member
    assert not table.load.passed_over


@settings(max_examples=60, deadline=None)
@given(
    launches=st.lists(
        st.tuples(st.sampled_from([0, 0, 0, 1, 2, 3, 4]), st.floats(0.0, 3.0)), max_size=200
    ),
    factor=st.sampled_from([1.05, 1.25, 2.0]),
)
def test_each_answer_is_the_cores_pick_against_the_same_window(
    launches: list[tuple[int, float]], factor: float
) -> None:
    clock = Clock()
    view = bounded(TEN, bounded_load={"factor": factor, "window": 10})
    table = RoutingTable(view, load=LoadBound(clock))
    window = table.load.window
    for repo, gap in launches:
        clock.at += gap
        path = f"/build/gh/org/repo{repo}/HEAD"
        window.advance(clock.at)
        expected = balance(view, path, 0.0, window).member
        assert member_of(table, path) == expected


def test_walking_past_the_members_kept_computes_the_rest_of_the_order() -> None:
    clock = Clock()
    view = bounded(TEN)
    load = LoadBound(clock)
    table = RoutingTable(view, load=load)
    order = order_of(view, HOT)
    limits = dict(with_limits(view.targets, 1.25))
    window = load.window
    window.advance(clock.at)
    for member in order[: ORDER_KEPT + 1]:  # the kept ones and the next: at their bounds
        while window.counts.get(member, 0) < limits[member] * (window.total + 1):
            window.add(member)
    expected = balance(view, HOT, 0.0, window).member
    assert expected == order[ORDER_KEPT + 1]
    assert member_of(table, HOT) == expected
    assert set(load.passed_over) == set(order[: ORDER_KEPT + 1])


def test_the_sticky_cookie_is_honoured_and_counted_in_the_window() -> None:
    clock = Clock()
    view = bounded()
    table = RoutingTable(view, load=LoadBound(clock))
    first = order_of(view, HOT)[0]
    url = f"https://{first}.example.org"
    for _ in range(50):
        assert member_of(table, HOT, cookie=url) == first
    assert table.load.window.counts == {first: 50}
    assert not table.load.passed_over
    assert table.counts() == {(first, "cookie"): 50}
    # a launch without the cookie finds its first member past its bound
    assert member_of(table, HOT) != first


def test_the_window_outlives_a_new_generation() -> None:
    clock = Clock()
    load = LoadBound(clock)
    table = RoutingTable(bounded(), load=load)
    for _ in range(30):
        member_of(table, HOT)
    counted = dict(load.window.counts)
    fresh = table.for_view(bounded(full=("gamma",)))
    assert fresh is not table and fresh.load is load
    assert dict(load.window.counts) == counted
    member_of(fresh, HOT)
    assert load.window.total == 31
    # a new window length resizes the window, keeping what it counts
    longer = fresh.for_view(bounded(full=("gamma",), bounded_load={"factor": 1.25, "window": 600}))
    assert longer is not fresh and longer.load is load
    assert load.window.seconds == 600 and load.window.total == 31


def test_a_new_factor_is_a_new_generation() -> None:
    table = RoutingTable(bounded())
    assert table.for_view(bounded()) is table
    assert table.for_view(bounded(bounded_load={"factor": 2, "window": 60})) is not table
    assert table.for_view(bounded(load_balancer="rendezvous")) is not table


def test_nobody_to_send_to_is_a_503_and_counts_nothing() -> None:
    view = bounded(full=tuple(THREE), fallback="none")
    table = RoutingTable(view, load=LoadBound(Clock()))
    assert table.answer(scope(HOT)) is NOBODY
    assert table.load.window.total == 0


def test_the_cache_keeps_one_order_per_repository_and_stays_bounded() -> None:
    clock = Clock()
    table = RoutingTable(bounded(TEN), max_paths=20, load=LoadBound(clock))
    for i in range(100):
        for ref in ("HEAD", "main"):
            member_of(table, f"/build/gh/org/repo{i}/{ref}")
        assert len(table.paths) <= 20 and len(table.keys) <= 20
    _, kept = table.entry(b"/build/gh/org/repo7/HEAD")
    assert kept is table.entry(b"/build/gh/org/repo7/main")[1]
    assert len(kept.routes) == ORDER_KEPT == len(kept.loads)


def test_a_table_without_a_router_keeps_its_own_window() -> None:
    table = RoutingTable(bounded())
    member_of(table, HOT)
    assert isinstance(table.load.window, LaunchWindow) and table.load.window.total == 1
    assert table.bounded is table.load
    assert RoutingTable(bounded(load_balancer="rendezvous")).bounded is None


def test_what_pages_read_is_sized_by_the_config_before_any_launch() -> None:
    clock = Clock()
    load = LoadBound(clock)
    view = bounded(bounded_load={"factor": 1.25, "window": 600})
    recent = load.recent(view)
    assert recent.window == 600 and recent.launches == 0
    assert set(recent.loads) == set(THREE) and recent.passed_over == {}
    assert load.current(view).seconds == 600
    for _ in range(3):
        load.count("alpha")
    clock.at += 599.0
    assert load.recent(view).loads["alpha"].launches == 3
    clock.at += 13.0  # past the window and its last step
    assert load.recent(view).launches == 0


def test_launches_leave_the_window_on_time_with_no_launch_to_move_it() -> None:
    """A launch its member's room takes reads no clock: the router's own task moves the
    window every step, so a quiet router's launches leave on time all the same."""
    clock = Clock()
    load = LoadBound(clock, seconds=0.5)  # steps of 10 ms
    table = RoutingTable(bounded(bounded_load={"window": 0.5}), load=load)
    for _ in range(5):
        member_of(table, HOT)
    assert load.window.total == 5
    clock.at += 0.52  # past the window and its last step

    async def until_empty() -> None:
        task = asyncio.create_task(load.run())
        try:
            async with asyncio.timeout(5):
                while load.window.total:
                    await asyncio.sleep(0.005)
        finally:
            task.cancel()

    asyncio.run(until_empty())
    assert load.window.counts == {}
