"""History events, as pure functions: transitions between views, observations at a
bounded rate, time windows, filtering and the one-line descriptions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.config import parse_config
from shared.evaluate import View, evaluate
from shared.history import (
    context_before,
    describe,
    due_observations,
    observation_event,
    parse_since,
    select,
    transitions,
)
from shared.records import CheckerHeartbeat, Drain, HealthObservation, MemberObservation

NOW = 1_700_000_000.0
CONFIG = parse_config(
    {
        "check": {"period": 10},
        "members": {
            "alpha": {"url": "https://alpha.example.org", "weight": 1, "prime": True},
            "beta": {"url": "https://beta.example.org", "weight": 1},
        },
    }
)


def obs(
    name: str, at: float, pods: int = 1, status: str = "ok", version: str = "1"
) -> MemberObservation:
    reasons = () if status == "ok" else ("check failed: JupyterHub API",)
    health = HealthObservation(status, reasons, pods, 100, at)  # type: ignore[arg-type]
    return MemberObservation(name, at, health, at, {"binderhub": version}, at)


def view(at: float, drains: dict[str, Drain] | None = None, **members: MemberObservation) -> View:
    records = {"alpha": obs("alpha", at), "beta": obs("beta", at), **members}
    return evaluate(CONFIG, records, drains or {}, CheckerHeartbeat("c", at, NOW), at)


def test_the_first_view_records_every_member_and_the_reference() -> None:
    events = transitions(None, view(NOW))
    assert [(e["event"], e.get("member"), e.get("new")) for e in events] == [
        ("member_state_changed", "alpha", "eligible"),
        ("member_state_changed", "beta", "eligible"),
        ("reference_changed", None, {"binderhub": "1"}),
    ]
    assert {e["at"] for e in events} == {NOW}


def test_no_change_no_event() -> None:
    assert transitions(view(NOW), view(NOW + 10)) == []


def test_a_member_going_full_then_down() -> None:
    full = view(NOW + 10, beta=obs("beta", NOW + 10, pods=95))
    [event] = transitions(view(NOW), full)
    assert event == {
        "event": "member_state_changed",
        "member": "beta",
        "old": "eligible",
        "new": "full",
        "reasons": ["full: 95 pods + headroom 10 >= quota 100"],
        "at": NOW + 10,
    }
    down = view(NOW + 20, beta=obs("beta", NOW + 20, status="unhealthy"))
    [event] = transitions(full, down)
    assert (event["old"], event["new"]) == ("full", "unhealthy")


def test_new_reasons_within_the_same_state_are_a_transition_too() -> None:
    full = view(NOW, beta=obs("beta", NOW, pods=95))
    fuller = view(NOW + 10, beta=obs("beta", NOW + 10, pods=99))
    [event] = transitions(full, fuller)
    assert (event["old"], event["new"], event["reasons"]) == (
        "full",
        "full",
        ["full: 99 pods + headroom 10 >= quota 100"],
    )


def test_reference_gate_and_drain_transitions() -> None:
    before = view(NOW)
    upgraded = view(
        NOW + 30,
        alpha=obs("alpha", NOW + 30, version="2"),
        drains={"beta": Drain("beta", "upgrade", NOW + 30)},
    )
    kinds = {(e["event"], e.get("member")) for e in transitions(before, upgraded)}
    assert ("reference_changed", None) in kinds
    assert ("member_state_changed", "beta") in kinds  # drained (and mismatched)


@pytest.mark.parametrize(
    ("kept", "due"),
    [
        ({}, ["alpha", "beta"]),
        ({"alpha": NOW - 59}, ["beta"]),
        ({"alpha": NOW - 60, "beta": NOW}, ["alpha"]),
    ],
)
def test_observations_are_kept_at_most_once_an_interval(
    kept: dict[str, float], due: list[str]
) -> None:
    records = {"alpha": obs("alpha", NOW), "beta": obs("beta", NOW)}
    assert due_observations(records, kept, NOW, 60) == due


def test_an_observation_event_keeps_what_the_rules_read() -> None:
    record = obs("beta", NOW, pods=7)
    event = observation_event(record)
    assert (event["event"], event["member"], event["at"]) == ("observation", "beta", NOW)
    assert set(event["record"]) == {"member", "checked_at", "health", "versions", "versions_at"}
    kept = MemberObservation.from_json(event["record"])
    assert kept == replace(record, healthy_at=None)  # only bookkeeping is left out
    assert view(NOW, beta=kept) == view(NOW, beta=record)  # the rules see the same


@pytest.mark.parametrize(
    ("text", "since"),
    [
        ("6h", NOW - 6 * 3600),
        ("90m", NOW - 5400),
        ("2d", NOW - 2 * 86400),
        ("1w", NOW - 604800),
        ("1h30m", NOW - 5400),
        ("45s", NOW - 45),
        ("1699999000", 1699999000.0),
    ],
)
def test_since(text: str, since: float) -> None:
    assert parse_since(text, NOW) == since


@pytest.mark.parametrize("text", ["yesterday", "6x", "-", "h6"])
def test_since_that_means_nothing_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since(text, NOW)


EVENTS = [
    {
        "event": "member_state_changed",
        "member": "alpha",
        "at": NOW,
        "old": None,
        "new": "eligible",
        "reasons": [],
    },
    {
        "event": "reference_changed",
        "at": NOW + 1,
        "old": None,
        "new": {"binderhub": "1"},
        "stale": False,
        "source": "alpha",
        "reason": None,
    },
    {
        "event": "member_state_changed",
        "member": "beta",
        "at": NOW + 2,
        "old": "eligible",
        "new": "full",
        "reasons": ["full"],
    },
    {"event": "launches", "router": "r1", "at": NOW + 3, "started_at": NOW, "counts": {"alpha": 3}},
    {"event": "drain", "member": "beta", "reason": "upgrade", "at": NOW + 4},
]


def test_select_by_time_and_member() -> None:
    assert select(EVENTS, NOW + 2) == EVENTS[2:]
    assert [e["event"] for e in select(EVENTS, member="beta")] == [
        "reference_changed",  # about the whole federation
        "member_state_changed",
        "drain",
    ]
    assert [e["event"] for e in select(EVENTS, member="alpha")] == [
        "member_state_changed",
        "reference_changed",
        "launches",  # alpha received some of them
    ]


def test_every_kind_reads_as_one_line() -> None:
    lines = [describe(e) for e in EVENTS]
    assert lines == [
        "member alpha: None -> eligible (all checks pass)",
        "reference version: None -> {'binderhub': '1'} from alpha",
        "member beta: eligible -> full (full)",
        "router r1 launches so far: alpha 3",
        "member beta drained by an operator: upgrade",
    ]
    assert describe(observation_event(obs("beta", NOW))) == "member beta observed: health ok"


def test_an_export_starts_with_what_came_before() -> None:
    config = {"event": "config", "at": NOW - 100, "config": {"members": {}}}
    older = {"event": "config", "at": NOW - 200, "config": {"members": {}}}
    alpha_obs = observation_event(obs("alpha", NOW - 50))
    alpha_old = observation_event(obs("alpha", NOW - 90))
    beta_state = {
        "event": "member_state_changed",
        "member": "beta",
        "at": NOW - 10,
        "old": "eligible",
        "new": "full",
        "reasons": [],
    }
    after = {
        "event": "member_state_changed",
        "member": "beta",
        "at": NOW + 5,
        "old": "full",
        "new": "eligible",
        "reasons": [],
    }
    events = [older, config, alpha_old, alpha_obs, beta_state, after]
    assert context_before(events, NOW) == [config, alpha_obs, beta_state]
    assert context_before(events, NOW - 1000) == []
