"""The words of a member's weight (shared/weights.py): made from the same numbers the status
document holds, so a page can never say one thing and the JSON another."""

from __future__ import annotations

import re
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from fedredirect.status import render_status
from router.pages import render_status_page
from shared.bounded import LaunchWindow, RecentLaunches, bound, member_loads
from shared.capacity import SentLaunches
from shared.evaluate import View, evaluate
from shared.explain import explain
from shared.records import CheckerHeartbeat
from shared.status import LaunchCounts, status_document
from shared.weights import (
    capacity_json,
    number,
    slow_start_json,
    weight_reasons,
    weight_summary,
)
from tests.support.builders import (
    FULL_PODS,
    NOW,
    make_config,
    make_obs,
    observe_all,
)
from tests.support.dom import Dom
from tests.support.status_doc import BASE
from tests.support.views import member_of, run, views_with_weights


def test_the_summary_says_configured_then_effective_then_why() -> None:
    reasons = ["capacity: 8 of 20 pods free, x0.4", "slow start: step 4 of 10, x0.16"]
    assert weight_summary(50, 3.2, reasons) == (
        "50 -> 3.2 (capacity: 8 of 20 pods free, x0.4; slow start: step 4 of 10, x0.16)"
    )
    assert weight_summary(50.0, 50.0, []) == "50 -> 50"
    assert weight_summary(30, 0.0, ["excluded: full"]) == "30 -> 0 (excluded: full)"


@given(st.floats(0, 1e9, allow_nan=False))
def test_numbers_keep_two_decimals_and_drop_trailing_zeros(value: float) -> None:
    shown = number(value)
    assert float(shown) == float(f"{value:.2f}")
    assert not re.search(r"\.\d*0$|\.$", shown)


def test_the_load_bound_says_how_near_a_member_is_and_when_it_was_passed_over() -> None:
    config = make_config(load_balancer="bounded")  # alpha 50, beta 50, gamma 30
    view = run(config, observe_all(config, pods=0, quota=None))

    window = LaunchWindow(60.0)
    window.advance(NOW)
    for member, n in {"alpha": 11, "beta": 20, "gamma": 9}.items():
        for _ in range(n):
            window.add(member)
    loads = member_loads(view.targets, 1.25, window)
    recent = RecentLaunches(60.0, 40, loads, {"alpha": 12})
    assert bound(1.25 * 50 / 130, 40) == 20  # alpha's and beta's
    assert weight_reasons(view, member_of(view, "alpha"), recent) == [
        "load bound: 11 of 40 launches in the last 60s, bound 20; "
        "passed over for 12 launches since the router started"
    ]
    assert weight_reasons(view, member_of(view, "beta"), recent) == [
        "load bound: 20 of 40 launches in the last 60s, bound 20, "
        "reached: its repositories' launches go to their next member"
    ]
    assert weight_reasons(view, member_of(view, "beta")) == []  # without the router's launches
    # /status.json, which the pages and `fedredirect status` print, says the same
    beta = status_document(view, recent=recent)["members"]["beta"]
    assert beta["weight_reasons"] == weight_reasons(view, member_of(view, "beta"), recent)


@settings(max_examples=200, deadline=None)
@given(drawn=views_with_weights())
def test_the_words_are_the_numbers(drawn: tuple[View, SentLaunches]) -> None:
    """An excluded member says so first; an eligible one names exactly the factors on its
    weight, with the factors its effective weight is the product of."""
    view, sent = drawn
    config, slow_start = view.config, view.config.slow_start
    for m in view.members:
        reasons = weight_reasons(view, m)
        capacity = capacity_json(m, config.pod_headroom)
        ramp = slow_start_json(m, NOW, slow_start)
        said = [r.split(":")[0] for r in reasons]
        if not m.eligible:
            assert reasons[0] == f"excluded: {m.state}" and m.effective_weight == 0
            assert "capacity" not in said and "slow start" not in said
            continue
        assert ("capacity" in said) == (capacity is not None)
        assert ("slow start" in said) == (ramp is not None)
        share = 1.0 if capacity is None else capacity["share"]
        factor = 1.0 if ramp is None else ramp["factor"]
        assert m.effective_weight == m.weight * share * factor
        if capacity is not None:
            words = reasons[said.index("capacity")]
            assert f", x{number(capacity['share'])}" in words
            assert ("launches sent since" in words) == (capacity["pending_launches"] > 0)
            assert capacity["pending_launches"] == sent.pending(m.name)
        if ramp is not None:
            assert f", x{number(ramp['factor'])}, " in reasons[said.index("slow start")]
            assert ramp["since"] <= NOW < ramp["until"] == ramp["since"] + slow_start


def ramping_federation() -> View:
    """alpha: 10 of its 20 pods free (8 taken, 2 its headroom); beta: eligible again 130 s
    ago (step 4 of 300 s); gamma: full."""
    config = make_config(pod_headroom="10%", slow_start=300)
    observations = {
        "alpha": make_obs("alpha", pods=8, quota=20),
        "beta": replace(make_obs("beta"), eligible_since=NOW - 130),
        "gamma": make_obs("gamma", pods=FULL_PODS),
    }
    return evaluate(config, observations, {}, CheckerHeartbeat("c1", NOW), NOW)


RAMPING = {
    "alpha": "50 -> 25 (capacity: 10 of 20 pods free, x0.5)",
    "beta": "50 -> 6.4 (capacity: 80 of 100 pods free, x0.8; "
    "slow start: step 4 of 10, x0.16, full weight at 22:16:10 UTC)",
    "gamma": "30 -> 0 (excluded: full)",
}


def test_every_page_says_the_same_words() -> None:
    """/status.json holds them, /why gives them with each candidate, the command line
    prints them in its WEIGHT column and /status under the effective weight."""
    view = ramping_federation()
    doc = status_document(view)
    members = doc["members"]
    summaries = {
        n: weight_summary(m["weight"], m["effective_weight"], m["weight_reasons"])
        for n, m in members.items()
    }
    assert summaries == RAMPING
    why = {c["member"]: c for c in explain(view, "/build/gh/org/repo/HEAD")["candidates"]}
    for name, m in members.items():
        candidate = why[name]
        assert candidate["configured_weight"] == m["weight"]
        assert candidate["effective_weight"] == m["effective_weight"]
        assert candidate["weight_reasons"] == m["weight_reasons"]
    assert why["beta"]["weight"] == why["beta"]["effective_weight"]  # what the balancer uses
    lines = render_status(view).splitlines()
    for name, summary in RAMPING.items():
        row = next(line for line in lines if line.startswith(name))
        assert f"  {summary}  " in row
    page = Dom(render_status_page({**doc, "router": BASE["router"]}))  # a router's page
    shown = [text for _attrs, text in page.by_class("reason")]
    assert shown == [r for m in members.values() for r in m["weight_reasons"]]


def test_why_words_the_load_bound_against_the_routers_recent_launches() -> None:
    config = make_config(load_balancer="bounded")
    view = run(config, observe_all(config, quota=None))
    window = LaunchWindow(60.0)
    window.advance(NOW)
    for _ in range(5):
        window.add("gamma")
    candidates = explain(view, "/build/gh/o/r/HEAD", launches=window)["candidates"]
    why = {c["member"]: c for c in candidates}
    assert why["gamma"]["weight_reasons"] == [
        "load bound: 5 of 5 launches in the last 60s, bound 2, "
        "reached: its repositories' launches go to their next member"
    ]
    assert why["alpha"]["weight_reasons"] == [
        "load bound: 0 of 5 launches in the last 60s, bound 3"
    ]
    quiet = explain(view, "/build/gh/o/r/HEAD")["candidates"]
    assert all(c["weight_reasons"] == [] for c in quiet)  # no window: nothing to say


def test_the_command_line_shows_every_routers_recent_launches_when_history_was_read() -> None:
    view = ramping_federation()
    lines = render_status(view, LaunchCounts(3600.0, {"alpha": 30, "beta": 10})).splitlines()
    header = next(line for line in lines if line.startswith("MEMBER"))
    assert header.split() == [
        "MEMBER", "STATE", "PODS", "LAUNCHES", "SHARE", "RECORD", "VERSIONS", "WEIGHT", "REASONS",
    ]  # fmt: skip
    rows = {line.split()[0]: line for line in lines[lines.index(header) + 1 :] if line}
    assert " 75% (30 in 1h) " in rows["alpha"]
    assert " 25% (10 in 1h) " in rows["beta"]
    assert " 0% (0 in 1h) " in rows["gamma"]
    assert " - (0 in 1h) " in render_status(view, LaunchCounts(3600.0, {})).splitlines()[5]
    assert "SHARE" not in render_status(view)
