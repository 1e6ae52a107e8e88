"""History events, as pure functions: transitions between views, observations at a
bounded rate, time windows, filtering and the one-line descriptions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from router.history import LAUNCHES_EVERY
from shared.config import parse_config
from shared.evaluate import View, evaluate
from shared.history import (
    context_before,
    describe,
    due_observations,
    observation_event,
    outage_events,
    parse_since,
    select,
    transitions,
)
from shared.records import (
    CheckerHeartbeat,
    Drain,
    HealthObservation,
    LaunchOutcomes,
    MemberObservation,
)

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
    return MemberObservation(name, at, health, versions={"binderhub": version}, versions_at=at)


def view(at: float, drains: dict[str, Drain] | None = None, **members: MemberObservation) -> View:
    records = {"alpha": obs("alpha", at), "beta": obs("beta", at), **members}
    return evaluate(CONFIG, records, drains or {}, CheckerHeartbeat("c", at), at)


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
        "excluded_by": ["full"],
        "at": NOW + 10,
    }
    down = view(NOW + 20, beta=obs("beta", NOW + 20, status="unhealthy"))
    [event] = transitions(full, down)
    assert (event["old"], event["new"]) == ("full", "unhealthy")
    assert event["excluded_by"] == ["unhealthy"]


def full_beta(at: float, pods: int = 95) -> MemberObservation:
    return obs("beta", at, pods=pods)


def test_another_rule_within_the_same_state_is_a_transition_too() -> None:
    full = view(NOW, beta=full_beta(NOW))
    behind = view(NOW + 10, alpha=obs("alpha", NOW + 10, version="2"), beta=full_beta(NOW + 10))
    member_events = [e for e in transitions(full, behind) if e.get("member") == "beta"]
    assert [(e["old"], e["new"], e["reasons"]) for e in member_events] == [
        (
            "full",
            "full",
            [
                "full: 95 pods + headroom 10 >= quota 100",
                "version differs from the reference (prime alpha) on: binderhub",
            ],
        )
    ]


def test_a_reason_whose_numbers_alone_change_is_no_transition() -> None:
    """A full member's pod count moving, or a stale record ageing, would otherwise add an
    event every period for as long as the state lasts; the observations carry them."""
    full = view(NOW, beta=full_beta(NOW, pods=95))
    fuller = view(NOW + 10, beta=full_beta(NOW + 10, pods=99))
    assert fuller.member("beta").reasons != full.member("beta").reasons
    assert transitions(full, fuller) == []


@pytest.mark.parametrize("policy", ["keep", "all"])
def test_an_outage_is_recorded_by_the_writer_after_it(policy: str) -> None:
    """No heartbeat for 100 s with max_staleness 30 s (3 x period 10): the routers applied
    the outage policy from 30 s after the last heartbeat until the next one."""
    config = parse_config({**CONFIG.model_dump(exclude_none=True), "outage": {"policy": policy}})
    events = outage_events(NOW, NOW + 100, config)
    assert [(e["at"], e["old"], e["new"]) for e in events] == [
        (NOW + 30, False, True),
        (NOW + 100, True, False),
    ]
    assert events[0]["reason"] == (
        f"no checker heartbeat for 100s (max 30s): the routers applied outage policy {policy!r}"
    )
    assert describe(events[0]) == f"outage: {events[0]['reason']}"
    assert describe(events[1]) == "outage over: the checker's heartbeat is fresh again"


@pytest.mark.parametrize("last", [None, NOW - 30, NOW - 5])
def test_no_outage_while_a_heartbeat_was_never_max_staleness_old(last: float | None) -> None:
    assert outage_events(last, NOW, CONFIG) == []


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
    assert set(event["record"]) == {
        "member",
        "checked_at",
        "health",
        "versions",
        "versions_at",
        "eligible_since",
    }
    kept = MemberObservation.from_json(event["record"])
    assert kept == record  # nothing the rules read is left out
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


def test_the_default_caps_keep_14_days_of_10_members_and_2_routers() -> None:
    """The documented sizing: a record per member every observation_interval, each router's
    launch counts every minute, and a few transitions a member a day fit max_entries."""
    settings = CONFIG.history
    assert settings.max_age == 14 * 86400
    a_day = 10 * 86400 / settings.observation_interval + 2 * 86400 / LAUNCHES_EVERY + 10 * 4
    assert 14 * a_day <= settings.max_entries


# --- launch outcomes ---------------------------------------------------------------------------

EJECTION = "launches failing: 12 of 20 failed in the last 60s (60% > 25%); ejected for 30s"


def counted(
    name: str, at: float, launches: int = 20, failures: int = 12, until: float | None = None
) -> MemberObservation:
    """``name`` observed at ``at`` with its launch outcomes; ejected until ``until``."""
    outcomes = LaunchOutcomes(
        launches,
        failures,
        60.0,
        at,
        ejected_until=until,
        ejection_reason=None if until is None else EJECTION,
        ejections=0 if until is None else 1,
    )
    return replace(obs(name, at), outcomes=outcomes)


def test_an_ejection_for_failing_launches_is_recorded_as_it_begins_and_ends() -> None:
    counting = view(NOW, beta=counted("beta", NOW))
    ejected = view(NOW + 10, beta=counted("beta", NOW + 10, until=NOW + 40))
    [began] = transitions(counting, ejected)
    assert began == {
        "event": "member_state_changed",
        "member": "beta",
        "old": "eligible",
        "new": "failing",
        "reasons": [EJECTION],
        "excluded_by": ["failing"],
        "at": NOW + 10,
    }
    still = view(NOW + 39, beta=counted("beta", NOW + 39, 3, 0, until=NOW + 40))
    assert transitions(ejected, still) == []  # its counts alone moved
    over = view(NOW + 40, beta=counted("beta", NOW + 40, 3, 0, until=NOW + 40))
    [ended] = transitions(still, over)
    assert (ended["old"], ended["new"], ended["excluded_by"]) == ("failing", "eligible", [])


def test_an_ejection_behind_another_state_is_recorded_in_excluded_by() -> None:
    down = obs("beta", NOW, status="unhealthy")
    before = view(NOW, beta=down)
    after = view(
        NOW + 10, beta=replace(down, outcomes=counted("beta", NOW, until=NOW + 40).outcomes)
    )
    [event] = transitions(before, after)
    assert (event["old"], event["new"]) == ("unhealthy", "unhealthy")
    assert event["excluded_by"] == ["unhealthy", "failing"]


def test_an_observation_keeps_its_launch_outcomes_and_says_them() -> None:
    record = counted("beta", NOW, until=NOW + 40)
    assert record.outcomes is not None
    event = observation_event(record)
    assert event["record"]["outcomes"] == {
        "launches": 20,
        "failures": 12,
        "window": 60.0,
        "observed_at": NOW,
        "ejected_until": NOW + 40,
        "ejection_reason": EJECTION,
        "ejections": 1,
        "error": None,
    }
    assert MemberObservation.from_json(event["record"]) == record
    assert describe(event) == "member beta observed: health ok, launches 12/20 failed in 60s"
    unread = replace(record, outcomes=replace(record.outcomes, error="answered HTTP 502"))
    assert describe(observation_event(unread)).endswith(
        "launches 12/20 failed in 60s (metrics not read: answered HTTP 502)"
    )
