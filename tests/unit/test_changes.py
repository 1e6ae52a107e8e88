"""The events logged between two views: state changes, reference changes, flag flips."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from shared.changes import view_changes
from shared.evaluate import View
from shared.records import Drain, MemberObservation
from tests.support.builders import (
    FULL_PODS,
    NOW,
    V1,
    V2,
    federations,
    make_config,
    make_obs,
    observe_all,
)
from tests.support.views import evaluate_raw, run

CONFIG = make_config()  # alpha 50 (prime), beta 50, gamma 30


def healthy() -> View:
    return run(CONFIG, observe_all(CONFIG))


def events_of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == kind]


def test_nothing_changed_means_no_events() -> None:
    assert view_changes(healthy(), healthy()) == []


def test_time_passing_alone_is_not_a_change() -> None:
    old = run(CONFIG, observe_all(CONFIG))
    new = run(CONFIG, observe_all(CONFIG, now=NOW + 5), now=NOW + 5)
    assert view_changes(old, new) == []


def test_first_view_reports_every_member_and_the_reference() -> None:
    events = view_changes(None, healthy())
    states = events_of(events, "member_state_changed")
    assert [(e["member"], e["old"], e["new"]) for e in states] == [
        ("alpha", None, "eligible"),
        ("beta", None, "eligible"),
        ("gamma", None, "eligible"),
    ]
    (ref,) = events_of(events, "reference_changed")
    assert ref["old"] is None
    assert ref["new"] == V1
    assert ref["stale"] is False
    assert ref["source"] == "prime alpha"
    assert not events_of(events, "gate_suspended")
    assert not events_of(events, "fallback_active")


def test_member_state_change_reports_old_new_and_reasons() -> None:
    obs = observe_all(CONFIG) | {"gamma": make_obs("gamma", pods=FULL_PODS)}
    events = view_changes(healthy(), run(CONFIG, obs))
    assert events == [
        {
            "event": "member_state_changed",
            "member": "gamma",
            "old": "eligible",
            "new": "full",
            "reasons": ["full: 95 pods + headroom 10 >= quota 100"],
            "excluded_by": ["full"],
        }
    ]
    back = view_changes(run(CONFIG, obs), healthy())
    assert [(e["member"], e["old"], e["new"], e["reasons"]) for e in back] == [
        ("gamma", "full", "eligible", [])
    ]


def test_a_new_reason_without_a_new_state_is_not_an_event() -> None:
    full = observe_all(CONFIG) | {"gamma": make_obs("gamma", pods=FULL_PODS)}
    full_and_old = full | {"gamma": make_obs("gamma", pods=FULL_PODS, versions=V2)}
    assert view_changes(run(CONFIG, full), run(CONFIG, full_and_old)) == []


def test_drain_is_reported() -> None:
    drained = run(CONFIG, observe_all(CONFIG), {"beta": Drain("beta", "upgrade", NOW)})
    (event,) = view_changes(healthy(), drained)
    assert (event["member"], event["old"], event["new"]) == ("beta", "eligible", "drained")
    assert event["reasons"] == ["drained by an operator: upgrade"]


def test_reference_change_is_reported_with_old_and_new_versions() -> None:
    upgraded = observe_all(CONFIG) | {
        "alpha": make_obs("alpha", pods=FULL_PODS, versions=V2),
        "beta": make_obs("beta", versions=V2),
    }
    events = view_changes(healthy(), run(CONFIG, upgraded))
    (ref,) = events_of(events, "reference_changed")
    assert (ref["old"], ref["new"]) == (V1, V2)
    assert (ref["old_stale"], ref["stale"]) == (False, False)
    changed = {e["member"]: (e["old"], e["new"]) for e in events_of(events, "member_state_changed")}
    assert changed == {
        "alpha": ("eligible", "full"),
        "gamma": ("eligible", "version_mismatch"),
    }
    assert not events_of(events, "gate_suspended")


def test_reference_going_stale_is_reported_with_the_reason_and_gate_flip() -> None:
    old_prime = observe_all(CONFIG) | {"alpha": make_obs("alpha", versions_age=100)}
    events = view_changes(healthy(), run(CONFIG, old_prime))
    (ref,) = events_of(events, "reference_changed")
    assert (ref["old"], ref["new"]) == (V1, V1)
    assert (ref["old_stale"], ref["stale"]) == (False, True)
    assert "not observed in the last 30s" in ref["reason"]
    (gate,) = events_of(events, "gate_suspended")
    assert (gate["old"], gate["new"]) == (False, True)
    assert gate["reason"].startswith("reference version is stale")
    # alpha's own versions are too old to compare, but with the gate off nobody is excluded
    assert not events_of(events, "member_state_changed")


def test_gate_flip_back_is_reported() -> None:
    mismatch_only = observe_all(CONFIG) | {
        "alpha": make_obs("alpha", status="unhealthy", versions=V2)
    }
    suspended = run(CONFIG, mismatch_only)
    assert suspended.gate_suspended
    events = view_changes(suspended, healthy())
    (gate,) = events_of(events, "gate_suspended")
    assert (gate["old"], gate["new"], gate["reason"]) == (True, False, None)


def test_fallback_flip_is_reported_both_ways() -> None:
    down = run(CONFIG, observe_all(CONFIG, status="unreachable"))
    events = view_changes(healthy(), down)
    (fallback,) = events_of(events, "fallback_active")
    assert (fallback["old"], fallback["new"]) == (False, True)
    assert "fallback 'prime'" in fallback["reason"]
    assert len(events_of(events, "member_state_changed")) == 3
    assert not events_of(events, "reference_changed")

    (recovered,) = events_of(view_changes(down, healthy()), "fallback_active")
    assert (recovered["old"], recovered["new"], recovered["reason"]) == (True, False, None)


def test_member_new_in_the_config_is_reported() -> None:
    grown = make_config({"alpha": 50, "beta": 50, "gamma": 30, "delta": 10})
    events = view_changes(healthy(), run(grown, observe_all(grown)))
    assert [(e["member"], e["old"], e["new"]) for e in events] == [("delta", None, "eligible")]


@settings(max_examples=200, deadline=None)
@given(old=federations(), new=federations())
def test_events_match_the_differences(
    old: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]],
    new: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]],
) -> None:
    before, after = evaluate_raw(old), evaluate_raw(new)
    assert view_changes(after, after) == []
    events = view_changes(before, after)
    changed = {e["member"] for e in events_of(events, "member_state_changed")}
    expected = {
        m.name
        for m in after.members
        if (previous := before.member(m.name)) is None or previous.state != m.state
    }
    assert changed == expected
    ref_changed = (before.reference.versions, before.reference.stale) != (
        after.reference.versions,
        after.reference.stale,
    )
    assert bool(events_of(events, "reference_changed")) == ref_changed
    for flag in ("gate_suspended", "fallback_active"):
        flipped = getattr(before, flag) != getattr(after, flag)
        assert len(events_of(events, flag)) == int(flipped)
