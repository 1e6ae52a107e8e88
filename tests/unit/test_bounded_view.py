"""``load_balancer: bounded`` in the core: the view's pick, /why's order walked against a
router's recent launches, and each member's part of them in the status document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from fedredirect.status import render_status_document
from router.pages import render_status_page
from shared.balance import cache_key
from shared.bounded import LaunchWindow, RecentLaunches, bound, member_loads, rendezvous_order
from shared.bounded import with_limits as limits_of
from shared.evaluate import View, balance, balancer_reason, evaluate
from shared.explain import explain
from shared.records import CheckerHeartbeat
from shared.status import recent_launches_json, status_document, view_to_json
from tests.support.builders import FULL_PODS, NOW, make_config, make_obs, observe_all
from tests.support.views import run

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "status.schema.json").read_text("utf-8")
)
HOT = "/build/gh/org/hot/HEAD"


def bounded_view(**settings: Any) -> View:
    config = make_config(load_balancer="bounded", **settings)  # alpha 50, beta 50, gamma 30
    return run(config, observe_all(config))


def window_of(counts: dict[str, int], at: float = NOW) -> LaunchWindow:
    window = LaunchWindow(60.0)
    window.advance(at)
    for member, n in counts.items():
        for _ in range(n):
            window.add(member)
    return window


def order_of(view: View, path: str = HOT) -> list[str]:
    return [t.name for t in rendezvous_order(cache_key(path), view.targets)]


# --- the pick -------------------------------------------------------------------------------


def test_without_launches_bounded_picks_as_rendezvous() -> None:
    view = bounded_view()
    rendezvous = run(make_config(), observe_all(make_config()))
    for i in range(30):
        path = f"/build/gh/org/repo{i}/HEAD"
        assert view.pick(path) == rendezvous.pick(path)
        assert view.pick(path, launches=window_of({})) == rendezvous.pick(path)


def test_a_member_past_its_bound_is_passed_over_for_the_next_in_the_order() -> None:
    view = bounded_view()
    first, second, _ = order_of(view)
    limits = dict(limits_of(view.targets, 1.25))
    at_bound = bound(limits[first], 39)
    window = window_of({first: at_bound, "elsewhere": 39 - at_bound})
    decision = view.pick(HOT, launches=window)
    assert (decision.member, decision.reason) == (second, "balancer")
    window = window_of({first: at_bound - 1, "elsewhere": 40 - at_bound})
    assert view.pick(HOT, launches=window).member == first
    # a factor so large no member reaches its bound: always the rendezvous pick
    lax = bounded_view(bounded_load={"factor": 1000, "window": 60})
    assert lax.pick(HOT, launches=window_of({first: 39})).member == first


def test_the_cookie_wins_over_the_bound() -> None:
    view = bounded_view()
    first, second, _ = order_of(view)
    window = window_of({first: 100})
    cookie = view.pick(HOT, f"https://{first}.example.org", launches=window)
    assert (cookie.member, cookie.reason) == (first, "cookie")
    assert view.pick(HOT, launches=window).member == second


def test_the_reason_says_which_set_the_member_came_from() -> None:
    config = make_config(load_balancer="bounded", fallback="all")
    everyone_full = run(config, observe_all(config, pods=FULL_PODS))
    assert everyone_full.fallback_active and balancer_reason(everyone_full) == "fallback"
    assert balance(everyone_full, HOT, 0.0, window_of({})).reason == "fallback"
    outage = evaluate_late(config)
    assert outage.outage_active and not outage.fallback_active
    assert balancer_reason(outage) == "outage"
    assert balancer_reason(bounded_view()) == "balancer"
    nobody = run(make_config(load_balancer="bounded", fallback="none"), {})
    assert balance(nobody, HOT, 0.0, window_of({"alpha": 3})).member is None


def evaluate_late(config: Any) -> View:
    """The view an hour after the checker's last heartbeat (the outage policy applies)."""
    heartbeat = CheckerHeartbeat("c", NOW, fence=1)
    return evaluate(config, observe_all(config), {}, heartbeat, NOW + 3600)


# --- /why ---------------------------------------------------------------------------------------


def test_why_shows_the_order_against_the_bounds_and_who_was_passed_over() -> None:
    view = bounded_view()
    first, second, third = order_of(view)
    limits = dict(limits_of(view.targets, 1.25))
    at_bound = bound(limits[first], 39)
    window = window_of({first: at_bound, second: 2, "elsewhere": 37 - at_bound})
    why = explain(view, HOT, launches=window)
    assert why["pick"]["member"] == second
    assert why["bounded"] == {
        "factor": 1.25,
        "window_seconds": 60.0,
        "launches": 39,
        "order": [
            {"member": first, "launches": at_bound, "bound": at_bound, "passed_over": True},
            {
                "member": second,
                "launches": 2,
                "bound": bound(limits[second], 39),
                "passed_over": False,
            },
            {
                "member": third,
                "launches": 0,
                "bound": bound(limits[third], 39),
                "passed_over": False,
            },
        ],
    }
    scores = [c["score"] for c in why["candidates"]]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)
    assert [c["member"] for c in why["candidates"]] == [first, second, third]


def test_why_without_launches_or_with_a_cookie_passes_nobody_over() -> None:
    view = bounded_view()
    first = order_of(view)[0]
    quiet = explain(view, HOT)["bounded"]
    assert quiet["launches"] == 0 and [o["launches"] for o in quiet["order"]] == [0, 0, 0]
    assert not any(o["passed_over"] for o in quiet["order"])
    assert [o["bound"] for o in quiet["order"]] == [1, 1, 1]
    window = window_of({first: 100})
    with_cookie = explain(view, HOT, f"https://{first}.example.org", launches=window)
    assert with_cookie["pick"]["reason"] == "cookie"
    assert not any(o["passed_over"] for o in with_cookie["bounded"]["order"])
    rendezvous = run(make_config(), observe_all(make_config()))
    assert explain(rendezvous, HOT)["bounded"] is None


# --- the status document ----------------------------------------------------------------------


def test_each_member_shows_its_part_of_the_routers_recent_launches() -> None:
    config = make_config(load_balancer="bounded")
    observations = observe_all(config)
    observations["gamma"] = make_obs("gamma", pods=FULL_PODS)  # not a target
    view = run(config, observations)
    window = window_of({"alpha": 6, "gamma": 2})
    loads = member_loads(view.targets, 1.25, window)
    recent = RecentLaunches(60.0, window.total, loads, {"alpha": 3})
    router = {
        "view_age_seconds": 0.1,
        "max_view_age_seconds": 30.0,
        "store_error": None,
        "generation": 1,
        "checker_heartbeat_age_seconds": None,
        "reason": None,
    }
    doc = status_document(view, router, {("alpha", "balancer"): 6}, recent=recent)
    members = doc["members"]
    # alpha and beta, of weight 50 each, are the targets; all 8 launches count in the bound
    target = {"weighted_share": 0.5, "bound": bound(1.25 * 50 / 100, 8), "window_seconds": 60.0}
    alpha, beta = (members[name]["recent_launches"] for name in ("alpha", "beta"))
    assert alpha == {"launches": 6, "share": 0.75, "passed_over": 3, **target}
    assert beta == {"launches": 0, "share": 0.0, "passed_over": 0, **target}
    assert members["gamma"]["recent_launches"]["weighted_share"] is None
    assert members["gamma"]["recent_launches"]["bound"] is None
    assert members["gamma"]["recent_launches"]["share"] == 0.25
    assert list(Draft202012Validator(SCHEMA).iter_errors(doc)) == []
    assert all(m["recent_launches"] is None for m in view_to_json(view)["members"].values())

    # fedredirect status and /status show them beside the member
    alpha_bound = bound(1.25 * 50 / 100, 8)
    text = render_status_document(doc)
    assert "RECENT" in text.splitlines()[text.splitlines().index("") + 1]
    assert f"75% (6 <= {alpha_bound}, passed over 3)" in text
    assert "0% (0 <= " in text and "25% (2)" in text
    assert "RECENT" not in render_status_document(view_to_json(view))
    page = render_status_page(doc)
    assert "recent share (last 60s)" in page
    assert 'data-launches="6" data-passed-over="3">75% (6)<br>' in page
    assert f"bound {alpha_bound}, weighted share 50%" in page
    assert "recent share" not in render_status_page(
        {**doc, "members": view_to_json(view)["members"]}
    )


def test_a_member_neither_target_nor_launched_shows_no_share_of_an_empty_window() -> None:
    empty = RecentLaunches(60.0, 0, {}, {})
    assert recent_launches_json("gamma", empty) == {
        "launches": 0,
        "share": None,
        "weighted_share": None,
        "bound": None,
        "passed_over": 0,
        "window_seconds": 60.0,
    }
    some = RecentLaunches(30.0, 4, {}, {"gamma": 2})
    assert recent_launches_json("gamma", some) == {
        "launches": 0,
        "share": 0.0,
        "weighted_share": None,
        "bound": None,
        "passed_over": 2,
        "window_seconds": 30.0,
    }
    assert recent_launches_json("gamma", None) is None
