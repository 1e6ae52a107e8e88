"""render_status_page on hand-built /status.json documents, read back with html.parser."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from router.pages import render_status_page
from shared.evaluate import STATES
from shared.timeline import NO_HISTORY, timeline
from tests.support.dom import Dom
from tests.support.events import gate_suspended, reference_changed, state_changed
from tests.support.status_doc import BASE, REF
from tests.support.status_doc import member as _member


def _doc(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc.update(changes)
    return doc


BANNERS = (
    "banner-outage",
    "banner-fallback",
    "banner-gate",
    "banner-stale-reference",
    "banner-store",
)


def test_a_healthy_federation_shows_no_banner_and_a_refreshing_page() -> None:
    page = render_status_page(_doc())
    dom = Dom(page)
    assert dom.by_class("banner") == []
    assert '<meta http-equiv="refresh" content="5">' in page
    row = dom.by_id("member-alpha")
    assert row is not None and row[0]["data-state"] == "eligible"
    assert "prime" in row[1] and "100% (4)" in row[1]


@pytest.mark.parametrize(
    ("banner", "changes", "reason"),
    [
        (
            "banner-outage",
            {
                "outage": {
                    "policy": "keep",
                    "active": True,
                    "reason": "checker heartbeat is 90s old",
                }
            },
            "checker heartbeat is 90s old",
        ),
        (
            "banner-fallback",
            {"fallback": {"policy": "prime", "active": True, "reason": "no member is eligible"}},
            "no member is eligible",
        ),
        (
            "banner-gate",
            {"version_gate": {"suspended": True, "reason": "gating would exclude everyone"}},
            "gating would exclude everyone",
        ),
        (
            "banner-stale-reference",
            {
                "reference": {
                    **BASE["reference"],
                    "stale": True,
                    "stale_reason": "prime versions 4000s old",
                }
            },
            "prime versions 4000s old",
        ),
        (
            "banner-store",
            {"router": {**BASE["router"], "store_error": "ConnectionError: refused"}},
            "ConnectionError: refused",
        ),
    ],
)
def test_each_banner_appears_exactly_when_its_flag_is_set(
    banner: str, changes: dict[str, Any], reason: str
) -> None:
    dom = Dom(render_status_page(_doc(**changes)))
    found = dom.by_id(banner)
    assert found is not None and "banner" in found[0]["class"].split()
    assert reason in found[1]
    assert [b for b in BANNERS if b != banner and dom.by_id(b)] == []


def test_a_full_member_row_shows_its_state_and_reason() -> None:
    reason = "full: 98 pods + headroom 2 >= quota 100"
    members = {
        "alpha": _member(prime=True),
        "beta": _member("full", reasons=[reason], excluded_by=["full"], total_pods=98),
    }
    dom = Dom(render_status_page(_doc(members=members)))
    row = dom.by_id("member-beta")
    assert row is not None
    assert row[0]["data-state"] == "full"
    assert reason in row[1] and "98 / 100" in row[1]
    assert any(text == "full" for _attrs, text in dom.by_class("state-full"))
    assert "0% (0)" in row[1]


def test_only_the_differing_version_key_is_highlighted() -> None:
    members = {
        "alpha": _member(prime=True),
        "beta": _member(
            "version_mismatch",
            versions={**REF, "binderhub": "9.9.9"},
            version_differences=["binderhub"],
        ),
    }
    dom = Dom(render_status_page(_doc(members=members)))
    diffs = dom.by_class("version-diff")
    assert [(attrs["data-key"], text) for attrs, text in diffs] == [("binderhub", "9.9.9")]
    row = dom.by_id("member-beta")
    assert row is not None and "ref 1.0.0" in row[1]


def test_versions_not_observed_recently_highlight_every_compared_key() -> None:
    members = {"alpha": _member(prime=True, versions=None, version_differences=["*"])}
    dom = Dom(render_status_page(_doc(members=members)))
    assert sorted(a["data-key"] for a, _ in dom.by_class("version-diff")) == sorted(REF)


def test_a_malicious_reason_is_escaped() -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    members = {
        "alpha": _member(prime=True),
        '"><b>': _member("unhealthy", reasons=[evil], last_error=evil),
    }
    events = [
        state_changed('"><b>', NOW - 60, None, "unhealthy", evil),
        {"event": "drain", "member": '"><b>', "at": NOW - 30, "reason": evil},
    ]
    pictures = timeline(events, NOW - 60, members, "1h", NOW)
    page = render_status_page(_doc(members=members), pictures)
    dom = Dom(page)
    assert dom.scripts == 1 and page.count("<script>") == 1  # only the page's own refresh
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;" in page
    row = dom.by_id('member-"><b>')
    assert row is not None and evil in row[1]


def test_the_no_view_document_renders_its_reason() -> None:
    doc = {"error": "no snapshot in the store yet (is the checker up?)", "router": {}}
    dom = Dom(render_status_page(doc))
    found = dom.by_id("banner-no-view")
    assert found is not None and "is the checker up?" in found[1]


NOW = BASE["evaluated_at"]


def _pictures(events: list[dict[str, Any]], window: str = "1h") -> dict[str, Any]:
    return timeline(events, NOW - 1800, ["alpha"], window, NOW)


def _rects(page: str, strip: str) -> list[tuple[float, float, str, str]]:
    """(x, width, state, title) of each segment of a strip, read back from the HTML."""
    found = re.search(rf'<div class="strip" id="{strip}">(.*?)</div>', page, re.S)
    assert found is not None, f"no {strip}"
    return [
        (float(x), float(w), state, title)
        for state, x, w, title in re.findall(
            r'<rect class="seg [^"]*" data-state="([^"]*)".*?x="([^"]*)" y="0" width="([^"]*)"'
            r".*?<title>(.*?)</title>",
            found.group(1),
        )
    ]


def test_strips_place_each_state_at_its_time_with_its_reason() -> None:
    events = [
        state_changed("alpha", NOW - 1800, None, "eligible"),
        state_changed("alpha", NOW - 900, "eligible", "full", "full: 100 pods"),
        reference_changed(NOW - 1800, None, {"binderhub": "1"}, "prime alpha"),
        reference_changed(NOW - 600, {"binderhub": "1"}, {"binderhub": "2"}, "prime alpha"),
    ]
    page = render_status_page(_doc(), _pictures(events))
    alpha = _rects(page, "strip-alpha")
    assert [(x, w, state) for x, w, state, _ in alpha] == [
        (0.0, 500.0, "no_history"),  # the first half hour of the hour: before history
        (500.0, 250.0, "eligible"),
        (750.0, 250.0, "full"),
    ]
    assert "full: 100 pods" in alpha[2][3] and "no history before" in alpha[0][3]
    reference = _rects(page, "strip-reference")
    assert [(x, state) for x, _, state, _ in reference] == [
        (0.0, "no_history"),
        (500.0, "fresh"),
        (833.333, "fresh"),  # the version changed: a new segment, and a mark
    ]
    assert "binderhub=1" in reference[1][3] and "binderhub=2" in reference[2][3]
    assert re.findall(r'class="mark ref-change" data-at="([^"]*)"', page) == [str(NOW - 600)]
    assert re.findall(r'<a href="\?window=(\w+)" aria-current=page>', page) == ["1h"]


def test_a_store_error_leaves_the_table_and_says_why() -> None:
    pictures = {"window": "24h", "error": "cannot read history from the store: refused"}
    dom = Dom(render_status_page(_doc(), pictures))
    note = dom.by_id("history-error")
    assert note is not None and "refused" in note[1]
    assert dom.by_id("member-alpha") is not None


def _launches(router: str, at: float, **counts: int) -> dict[str, Any]:
    """A router's launch counts since it started (at NOW - 100), as it adds them to history."""
    return {
        "event": "launches",
        "router": router,
        "at": at,
        "started_at": NOW - 100,
        "counts": counts,
    }


def test_launch_shares_are_drawn_per_router() -> None:
    events = [_launches("r1", NOW - 50, alpha=1), _launches("r1", NOW - 10, alpha=4, beta=2)]
    page = render_status_page(_doc(), _pictures(events))
    bars = re.findall(
        r'data-member="(\w+)" data-count="(\d+)" x="[^"]*" y="0" width="([^"]*)"', page
    )
    assert bars == [("alpha", "4", "666.667"), ("beta", "2", "333.333")]
    legend = re.search(r'<div class="legend">(<span><i style[^"]*"[^>]*></i>.*?)</div>', page)
    assert legend is not None and re.findall(r"</i>(\w+)</span>", legend.group(1)) == [
        "alpha",
        "beta",
    ]


def test_a_brief_state_is_drawn_wide_enough_to_see() -> None:
    events = [
        state_changed("alpha", NOW - 86400, None, "eligible"),
        state_changed("alpha", NOW - 43200, "eligible", "unreachable", "connection refused"),
        state_changed("alpha", NOW - 43190, "unreachable", "eligible"),
    ]
    page = render_status_page(_doc(), _pictures(events, "24h"))
    assert [(x, state) for x, _, state, _ in _rects(page, "strip-alpha")] == [
        (0.0, "eligible"),
        (500.0, "unreachable"),  # ten seconds of a day: 0.116 units wide, exactly
        (500.116, "eligible"),
    ]
    blips = re.findall(
        r'<rect class="blip seg-(\w+)" data-at="([^"]*)" x="([^"]*)" y="0" width="3"'
        r".*?<title>(.*?)</title>",
        page,
    )
    assert len(blips) == 1
    state, at, x, title = blips[0]
    assert (state, float(at)) == ("unreachable", NOW - 43200)
    assert float(x) == pytest.approx(500 + 0.116 / 2 - 1.5, abs=0.01)  # centred on it
    assert "connection refused" in title


def test_stale_reference_and_suspended_gate_have_their_own_colours_and_reasons() -> None:
    events = [
        reference_changed(NOW - 3000, None, {"binderhub": "1"}, "prime alpha"),
        reference_changed(
            NOW - 1200,
            {"binderhub": "1"},
            {"binderhub": "1"},
            "prime alpha",
            stale=True,
            reason="prime versions 4000s old",
        ),
        gate_suspended(NOW - 1200, "gating would exclude everyone"),
    ]
    page = render_status_page(_doc(), _pictures(events))
    reference = _rects(page, "strip-reference")
    assert [(x, state) for x, _, state, _ in reference] == [
        (0.0, "no_history"),
        (166.667, "fresh"),
        (666.667, "stale"),
    ]
    assert "prime versions 4000s old" in reference[2][3]
    gate = _rects(page, "strip-gate")
    assert [(x, state) for x, _, state, _ in gate] == [(0.0, "gating"), (666.667, "suspended")]
    assert "gating would exclude everyone" in gate[1][3]
    assert ".seg-stale" in page and ".seg-suspended" in page  # coloured in the page's CSS


def _outcomes(**changes: Any) -> dict[str, Any]:
    outcomes = {
        "launches": 20,
        "failures": 12,
        "failure_ratio": 0.6,
        "window_seconds": 60.0,
        "age_seconds": 1.0,
        "ejected_until": None,
        "ejections": 0,
        "error": None,
    }
    return outcomes | changes


def test_launch_outcomes_the_ejection_and_the_metrics_note_are_in_the_table() -> None:
    """beta ejected for failing launches; gamma's metrics cannot be read (a note, still
    eligible); alpha's metrics are not read at all."""
    reason = "launches failing: 12 of 20 failed in the last 60s (60% > 25%); ejected for 30s"
    members = {
        "alpha": _member(prime=True),
        "beta": _member(
            "failing",
            reasons=[reason],
            excluded_by=["failing"],
            outcomes=_outcomes(ejected_until=NOW + 30, ejections=2),
        ),
        "gamma": _member(
            outcomes=_outcomes(launches=0, failures=0, failure_ratio=None, error="boom")
        ),
    }
    dom = Dom(render_status_page(_doc(members=members)))
    beta, gamma, alpha = (dom.by_id(f"member-{n}") for n in ("beta", "gamma", "alpha"))
    assert beta is not None and gamma is not None and alpha is not None
    assert beta[0]["data-state"] == "failing" and reason in beta[1]
    assert [text for _attrs, text in dom.by_class("state-failing")] == ["failing"]
    cells = {attrs.get("data-failures"): text for attrs, text in dom.by_class("launches")}
    assert cells["12"] == "12 / 20 failed60% in 60sejected until 22:13:50 UTC"
    assert cells["0"] == "0 / 0 failedin 60smetrics not read: boom"
    assert cells[None] == "-"  # alpha: no numbers
    assert [a["title"] for a, _ in dom.by_class("ejected")] == ["ejection 2 in a row"]
    assert gamma[0]["data-state"] == "eligible" and "metrics not read: boom" in gamma[1]


def test_an_ejection_that_is_over_is_not_shown() -> None:
    members = {"alpha": _member(prime=True, outcomes=_outcomes(ejected_until=NOW - 1))}
    dom = Dom(render_status_page(_doc(members=members)))
    assert dom.by_class("ejected") == []


def _fill(page: str, css_class: str) -> str:
    """The fill the page's CSS gives ``css_class`` (a rule may list several classes)."""
    found = re.search(
        rf"(?:^|[,}}\n])[^{{}}]*\.{css_class}(?=[,{{])[^{{]*\{{fill:([^}}]+)\}}", page
    )
    assert found is not None, f"no fill for .{css_class}"
    return found.group(1)


def test_every_state_has_a_colour_in_the_table_and_the_strips_and_the_legend() -> None:
    events = [state_changed("alpha", NOW - 1800 + 100 * i, None, s) for i, s in enumerate(STATES)]
    page = render_status_page(_doc(), _pictures(events))
    strip = [state for _x, _w, state, _title in _rects(page, "strip-alpha")]
    assert strip == [NO_HISTORY, *STATES]  # failing among them, drawn like the others
    legend = re.search(r'<div class="legend">(.*?)</div>', page, re.S)
    assert legend is not None
    shown = re.findall(r'<rect class="seg-(\w+)"', legend.group(1))
    assert "failing" in shown
    legend_fills = {_fill(page, f"seg-{s}") for s in shown}
    for state in STATES:
        assert re.search(rf"\.state-{state}[,{{]", page), f"no badge colour for {state}"
        assert _fill(page, f"seg-{state}") in legend_fills, f"{state}: a colour the legend lacks"
    assert _fill(page, "seg-failing") not in {
        _fill(page, f"seg-{s}") for s in shown if s != "failing"
    }


def test_the_configured_and_effective_weights_stand_with_why() -> None:
    """The words are the document's (shared.weights): the page prints them, escaped."""
    ramping = [
        "capacity: 40 of 100 pods free, x0.4",
        "slow start: step 4 of 10, x0.16, full weight at 22:16:10 UTC",
    ]
    members = {
        "alpha": _member(prime=True),
        "beta": _member(effective_weight=3.2, weight_reasons=ramping),
        "gamma": _member("full", excluded_by=["full"]),
        "delta": _member(weight_reasons=["<b>odd</b>"]),
    }
    dom = Dom(render_status_page(_doc(members=members)))
    weights = [text for _attrs, text in dom.by_class("weight")]
    effective = {a["data-effective"]: t for a, t in dom.by_class("effective")}
    assert weights == ["50", "50", "50", "50"]
    assert effective["3.2"] == "3.2" + "".join(ramping)
    reasons = [text for _attrs, text in dom.by_class("reason")]
    capacity = "capacity: 80 of 100 pods free, x0.8"  # alpha's, from tests/support/status_doc
    assert reasons == [capacity, *ramping, "excluded: full", "<b>odd</b>"]
    assert "<b>odd</b>" not in render_status_page(_doc(members=members))


def test_each_member_shows_its_share_of_every_routers_recent_launches() -> None:
    """From the document's launch_share, else from the share chart's counts, added over the
    routers; neither: no line."""
    members = {"alpha": _member(prime=True), "beta": _member()}
    events = [_launches("r1", NOW - 10, alpha=3, beta=1), _launches("r2", NOW - 5, beta=4)]
    dom = Dom(render_status_page(_doc(members=members), _pictures(events)))
    drawn = [(a["data-launches"], t) for a, t in dom.by_class("launch-share")]
    assert drawn == [
        ("3", "38% (3) in the last 1h, every router"),
        ("5", "62% (5) in the last 1h, every router"),
    ]
    served = {"launches": 7, "share": 0.7, "window_seconds": 3600.0}
    members["alpha"] = _member(prime=True, launch_share=served)
    dom = Dom(render_status_page(_doc(members=members), _pictures(events, "24h")))
    drawn = [t for _a, t in dom.by_class("launch-share")]
    assert drawn == [
        "70% (7) in the last 1h, every router",
        "62% (5) in the last 24h, every router",
    ]
    without_pictures = Dom(render_status_page(_doc(members=members))).by_class("launch-share")
    assert [t for _a, t in without_pictures] == ["70% (7) in the last 1h, every router"]
    error = {"window": "1h", "error": "cannot read history from the store: refused"}
    assert Dom(render_status_page(_doc(), error)).by_class("launch-share") == []
