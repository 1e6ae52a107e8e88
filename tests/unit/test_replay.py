"""Replay on tiny hand-made histories whose answers are known."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import fedredirect.replay_command as replays_command
from fedredirect.replay_command import read_alert_durations
from fedredirect.replay_text import render
from shared import replay as replays
from shared.balance import Target
from shared.config import FederationConfig, config_from_json, config_to_json, load_config
from shared.evaluate import evaluate
from shared.history import config_event
from shared.records import CheckerHeartbeat, MemberObservation
from shared.replay import ReplayError
from shared.replay_alerts import NOT_REPLAYED, REPLAYED
from tests.support.replay import V2, config, failing_history, history, obs

ROOT = Path(__file__).resolve().parents[2]
#: Replay as the command line runs it: with the for: of each alert in the rule file.
replay = functools.partial(replays.replay, alert_for=read_alert_durations())


def test_eligible_time_follows_the_observations() -> None:
    full = {"b": lambda t: {"pods": 100} if 300 <= t < 600 else {}}
    report = replay(history(**full))
    got = report["replayed"]
    assert got["eligible_seconds"] == {"a": 900, "b": 600}
    assert got["state_seconds"]["b"] == {"full": 300, "eligible": 600}
    assert got["nobody_eligible_seconds"] == 0 and got["fallback_seconds"] == 0
    assert got["alerts"] == []


def test_nobody_eligible_minutes_fallback_and_the_alert_that_fires() -> None:
    down = {m: (lambda t: {"status": "unhealthy"} if 300 <= t < 600 else {}) for m in "ab"}
    got = replay(history(**down))["replayed"]
    assert got["nobody_eligible_seconds"] == 300
    assert got["fallback_seconds"] == 300
    # 3m after 300 it pages; the fallback's 5m would end exactly when it recovers: quiet
    alerts = [(f["alert"], f["fired_at"], f["resolved_at"]) for f in got["alerts"]]
    assert alerts == [("FedredirectNoEligibleMembers", 480, 600)]
    # every launch of that spell went to the prime (fallback: prime)
    buckets = replay(history(**down), bucket=300)["replayed"]["launches"]["buckets"]
    assert buckets[1]["counts"] == {"a": 300} and buckets[1]["total"] == 300
    assert set(buckets[0]["counts"]) == {"a", "b"}


def test_shares_of_a_uniform_stream_follow_the_weights() -> None:
    got = replay(history(end=3600), per_minute=120)["replayed"]["launches"]["buckets"]
    (hour,) = got
    assert hour["total"] == 120 * 60
    assert 0.45 < hour["counts"]["a"] / hour["total"] < 0.55


def test_drains_count_as_drained() -> None:
    events = history()
    events += [
        {"event": "drain", "member": "b", "reason": "upgrade", "at": 150.0},
        {"event": "undrain", "member": "b", "at": 270.0},
    ]
    got = replay(events)["replayed"]
    assert got["state_seconds"]["b"] == {"drained": 120, "eligible": 780}


def test_a_record_not_refreshed_goes_stale() -> None:
    """b's last record is at 300: it is taken as refreshed for the observation interval
    plus two check periods (60 + 20 s), and is stale once older than record_max_age
    (30 s) after that: from 410 s, seen at the next step (a minute: 420 s)."""
    events = [e for e in history() if not (e.get("member") == "b" and e["at"] > 300)]
    got = replay(events)["replayed"]
    assert got["state_seconds"]["b"] == {"stale": 900 - 420, "eligible": 420}


def test_recorded_column_reads_the_transitions() -> None:
    events = history()
    events += [
        {"event": "member_state_changed", "member": "a", "old": None, "new": "eligible", "at": 0},
        {"event": "member_state_changed", "member": "b", "old": None, "new": "eligible", "at": 0},
        {
            "event": "member_state_changed",
            "member": "b",
            "old": "eligible",
            "new": "full",
            "at": 100,
        },
        {
            "event": "member_state_changed",
            "member": "b",
            "old": "full",
            "new": "eligible",
            "at": 400,
        },
    ]
    got = replay(events)["recorded"]
    assert got["eligible_seconds"] == {"a": 900, "b": 600}
    assert got["state_seconds"]["b"] == {"full": 300, "eligible": 600}


def test_another_config_changes_what_would_have_happened() -> None:
    """b rolls out a new version at 300 while the prime a stays on the old one: under the
    prime reference b is mismatched; under a pinned reference of the new one, a is (and
    before 300 both would be, so version gating is suspended and both are eligible)."""
    rollout = {"b": lambda t: {"versions": V2} if t >= 300 else {}}
    prime = replay(history(**rollout))["replayed"]
    assert prime["state_seconds"]["b"] == {"version_mismatch": 600, "eligible": 300}
    assert prime["version_mismatch_seconds"] == 600
    firing = [(f["alert"], f["member"], f["fired_at"]) for f in prime["alerts"]]
    assert ("FedredirectVersionMismatchExcluded", "b", 900) in firing
    pinned = config(versions={"reference": "pinned", "pinned": V2})
    other = replay(history(**rollout), pinned)["replayed"]
    assert other["state_seconds"]["a"] == {"version_mismatch": 600, "eligible": 300}
    assert other["state_seconds"]["b"] == {"eligible": 900}


def test_history_without_observations_or_config_is_refused() -> None:
    with pytest.raises(ReplayError, match="no observation"):
        replay([config_event(config(), 0.0)])
    with pytest.raises(ReplayError, match="nothing recorded after"):
        replay(history(), since=900)
    with pytest.raises(ReplayError, match="no config event"):
        replay([e for e in history() if e["event"] != "config"])


def test_every_alert_of_the_rule_file_is_replayed_or_said_not_to_be() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert names == set(REPLAYED) | set(NOT_REPLAYED)
    durations = read_alert_durations()
    assert durations["FedredirectNoEligibleMembers"] == 180  # for: 3m
    assert durations["FedredirectMemberStarved"] == 1200  # for: 20m
    # what the package (and so the image) carries is that file, not a copy of it
    packaged = Path(replays_command.__file__).parent / "alerts.yml"
    assert packaged.read_bytes() == (ROOT / "deploy/prometheus/alerts.yml").read_bytes()


def test_without_the_rule_file_no_alert_is_replayed(tmp_path: Path) -> None:
    """A rule file that is not there: replay says so instead of guessing a for:."""
    durations = read_alert_durations(tmp_path / "alerts.yml")
    assert durations == {}
    down = {m: (lambda t: {"status": "unhealthy"} if 300 <= t < 600 else {}) for m in "ab"}
    report = replays.replay(history(**down), alert_for=durations)
    assert report["replayed"]["alerts"] == [] and report["recorded"]["alerts"] == []
    assert set(report["alerts_not_replayed"]) == set(REPLAYED) | set(NOT_REPLAYED)


EXAMPLE = ROOT / "examples/incident-2022-01-27.jsonl"


def test_the_shipped_example_is_what_the_script_makes(tmp_path: Path) -> None:
    out = tmp_path / "incident.jsonl"
    made = subprocess.run(
        [sys.executable, str(ROOT / "scripts/make-incident-example"), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert out.read_bytes() == EXAMPLE.read_bytes()


def test_the_shipped_incident_under_majority() -> None:
    """The prime is full 08:00-17:00 and rolls out last (13:00): under the prime reference
    up-to-date members are excluded until gating would exclude everyone (10:00); under the
    majority reference the new version wins as soon as most weight runs it (09:30)."""
    events = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
    default = replay(events)
    assert default["replayed"]["eligible_seconds"] == default["recorded"]["eligible_seconds"]
    majority = replay(events, load_config(ROOT / "examples/incident-majority.yaml"))
    assert majority["config"]["reference_policy"] == "majority"
    before = default["replayed"]["version_mismatch_seconds"]
    after = majority["replayed"]["version_mismatch_seconds"]
    assert before == 90 * 60 and 55 * 60 < after < 65 * 60
    assert default["replayed"]["nobody_eligible_seconds"] == 0
    assert majority["replayed"]["nobody_eligible_seconds"] == 0
    # Launches follow the effective weights in both: whoever takes nearly all of them has
    # nearly all of the effective weight then (under prime, turing alone is eligible from
    # 09:40; under majority, gesis while ovh is excluded and turing nearly full), so nothing
    # is concentrated. The exclusions page as what they are, shorter under majority.
    fired = {(f["alert"], f["member"]): f for f in default["replayed"]["alerts"]}
    assert set(fired) == {
        ("FedredirectVersionMismatchExcluded", "ovh"),
        ("FedredirectMemberStarved", "ovh"),
        ("FedredirectVersionMismatchExcluded", "gesis"),
    }
    under_majority = {(f["alert"], f["member"]): f for f in majority["replayed"]["alerts"]}
    assert set(under_majority) == {
        ("FedredirectVersionMismatchExcluded", "ovh"),
        ("FedredirectMemberStarved", "ovh"),
        ("FedredirectVersionMismatchExcluded", "turing"),  # the old version, now the minority
    }
    ovh = ("FedredirectVersionMismatchExcluded", "ovh")
    assert under_majority[ovh]["resolved_at"] < fired[ovh]["resolved_at"] - 25 * 60


@pytest.mark.parametrize("config_args", [[], ["--config", "examples/incident-majority.yaml"]])
def test_the_readme_shows_what_replay_prints(config_args: list[str]) -> None:
    command = ["replay", "--from", "examples/incident-2022-01-27.jsonl", *config_args]
    readme = (ROOT / "README.md").read_text()
    start = readme.index("$ fedredirect " + " ".join(command) + "\n")
    shown = readme[readme.index("\n", start) + 1 : readme.index("\n```", start)]
    printed = subprocess.run(
        [sys.executable, "-m", "fedredirect.cli", *command],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.rstrip("\n") == shown


def test_the_launches_routers_counted_are_in_what_happened() -> None:
    """Two routers' cumulative counts, one restarting: the launches between two events of
    one router go to the bucket of the later one; a restart starts from zero."""
    events = history(end=900)
    events += [
        {"event": "launches", "router": "r1", "at": 60.0, "started_at": 0.0, "counts": {"a": 5}},
        {
            "event": "launches",
            "router": "r1",
            "at": 400.0,
            "started_at": 0.0,
            "counts": {"a": 7, "b": 3},
        },
        {"event": "launches", "router": "r2", "at": 450.0, "started_at": 0.0, "counts": {"b": 4}},
        {"event": "launches", "router": "r1", "at": 500.0, "started_at": 480.0, "counts": {"a": 1}},
    ]
    got = replay(events, bucket=300)["recorded"]["counted_launches"]
    assert [(b["counts"], b["total"]) for b in got] == [
        ({"a": 5}, 5),
        ({"a": 3, "b": 7}, 10),
        ({}, 0),
    ]
    assert "counted_launches" not in replay(history())["recorded"]


def test_the_served_config_stands_for_a_config_event_trimmed_away() -> None:
    events = [e for e in history() if e["event"] != "config"]
    events.append(
        {"event": "member_state_changed", "member": "a", "old": None, "new": "eligible", "at": 0}
    )
    report = replay(events, config(), config_from="the store", served=config())
    assert report["config"]["from"] == "the store"
    assert report["recorded"]["eligible_seconds"] == {"a": 900, "b": 0}
    assert report["recorded"]["state_seconds"]["b"] == {"unknown": 900}


def stale_and_unreachable() -> list[dict[str, Any]]:
    """Under ``fallback: all``: the prime a unhealthy from 120 s; b unreachable from 120 s
    and not observed after 300 s, so its unreachable record goes stale (from 420 s)."""
    events = [config_event(config(fallback="all"), 0.0)]
    for t in range(0, 901, 60):
        events.append(obs("a", float(t), status="unhealthy" if t >= 120 else "ok"))
        if t <= 300:
            events.append(obs("b", float(t), status="unreachable" if t >= 120 else "ok"))
    return events


def test_a_member_stale_and_unreachable_replays_as_a_router_routes_it() -> None:
    """The core's fallback leaves out a member whose record says unreachable, stale or not
    (replay's own copy of that rule once kept it in when it was stale)."""
    events = stale_and_unreachable()
    timeline = replays.replayed_timeline(events, config(fallback="all"))
    late = timeline.frame_at(600.0).view
    b = late.member("b")
    assert b is not None and b.excluded_by[:2] == ("stale", "unreachable")
    # what a router evaluates from the same records at that moment
    seen = [e for e in events[1:] if e["at"] <= 600]
    records = {e["member"]: MemberObservation.from_json(e["record"]) for e in seen}
    router = evaluate(config(fallback="all"), records, {}, CheckerHeartbeat("c", 600.0), 600.0)
    assert router.members_by_name["b"].excluded_by == b.excluded_by
    assert late.targets == router.targets == (Target("a", "http://a.example", 1.0),)
    got = replay(events, bucket=300)["replayed"]
    assert got["state_seconds"]["b"] == {"stale": 900 - 420, "unreachable": 300, "eligible": 120}
    assert [row["counts"] for row in got["launches"]["buckets"][1:]] == [{"a": 300}, {"a": 300}]


def test_recorded_rules_behind_a_state_decide_the_fallback_as_in_the_router() -> None:
    """A recorded change that lists every rule excluding the member (``excluded_by``) is
    routed by all of them: stale and unreachable is out of ``fallback: all``."""
    events = stale_and_unreachable()
    change = {"event": "member_state_changed", "reasons": []}
    events += [
        {**change, "member": "a", "old": None, "new": "eligible", "at": 0.0},
        {**change, "member": "b", "old": None, "new": "eligible", "at": 0.0},
        {**change, "member": "a", "old": "eligible", "new": "unhealthy", "at": 120.0},
        {**change, "member": "b", "old": "eligible", "new": "unreachable", "at": 120.0},
        {**change, "member": "b", "old": "unreachable", "new": "stale", "at": 420.0}
        | {"excluded_by": ["stale", "unreachable"]},
        {"event": "fallback_active", "old": False, "new": True, "at": 120.0},
    ]
    got = replay(events, bucket=300)["recorded"]
    assert got["state_seconds"]["b"] == {"stale": 480, "unreachable": 300, "eligible": 120}
    assert [row["counts"] for row in got["launches"]["buckets"][1:]] == [{"a": 300}, {"a": 300}]


# --- launch outcomes -------------------------------------------------------------------------


def test_a_day_with_an_ejection_replays_it_in_both_columns() -> None:
    report = replay(failing_history(), bucket=300)
    for column in ("recorded", "replayed"):
        got = report[column]
        assert got["state_seconds"]["b"] == {"failing": 300, "eligible": 1500}, column
        assert got["failing_seconds"] == 300 and got["nobody_eligible_seconds"] == 0
        # while it is ejected, every launch goes to a
        assert got["launches"]["buckets"][1]["counts"] == {"a": 300}, column
    text = render(report)
    assert "failing (members)                     5m          5m" in text.splitlines()


def test_another_policy_keeps_the_ejection_the_records_hold() -> None:
    """Replay has the counts at each record, not the samples the checker judged: under
    another reference or fallback policy the ejection stands as recorded."""
    other = config(versions={"reference": "majority"}, fallback="all")
    got = replay(failing_history(), other)["replayed"]
    assert got["state_seconds"]["b"] == {"failing": 300, "eligible": 1500}


def _metrics_off_for_b() -> FederationConfig:
    raw = config_to_json(config())
    raw["members"]["b"]["metrics"] = False
    return config_from_json(raw)


@pytest.mark.parametrize(
    "unread",
    [config(outcomes={"enabled": False}), _metrics_off_for_b()],
    ids=["outcomes off", "b's metrics not read"],
)
def test_a_config_that_reads_no_metrics_ejects_nobody(unread: FederationConfig) -> None:
    report = replay(failing_history(), unread)
    got = report["replayed"]
    assert got["state_seconds"]["b"] == {"eligible": 1800}
    assert got["failing_seconds"] == 0
    assert [f["alert"] for f in got["alerts"]] == []  # no metrics read: no ratio exported
    assert report["recorded"]["failing_seconds"] == 300  # what happened stays as it was


def test_the_launch_failure_alert_fires_from_the_recorded_counts() -> None:
    """More than a quarter of 20 launches failing from 300 s: the alert fires 10 minutes
    later, and resolves at the first evaluation where the ratio is back to 0."""
    report = replay(failing_history())
    for column in ("recorded", "replayed"):
        firings = [
            (f["alert"], f["member"], f["fired_at"], f["resolved_at"])
            for f in report[column]["alerts"]
        ]
        assert firings == [("FedredirectMemberLaunchesFailing", "b", 900.0, 1200.0)], column
    assert "FedredirectMemberLaunchesFailing" not in report["alerts_not_replayed"]


def test_without_launch_outcomes_in_history_their_alert_is_not_replayed() -> None:
    report = replay(history())
    assert report["alerts_not_replayed"]["FedredirectMemberLaunchesFailing"] == (
        "no launch outcomes in this history's records"
    )
    assert "FedredirectMemberLaunchesFailing" in render(report).splitlines()[-1]
