"""Replay's alert evaluation agrees with Prometheus on the real rules.

Replay evaluates the alerts of deploy/prometheus/alerts.yml in Python. Here the series the
checker and a router would have exported along a replayed timeline (every state gauge, the
eligible count, reference staleness, fallback, configured and effective weights, the
redirect counter of the synthetic launches) are written as a promtool unit test whose
expectations are replay's own answer at every minute, and `promtool test rules` runs the
real rule expressions on them. Annotations are left out of the copy of the rules the test
runs (expressions, ``for:`` and labels unchanged), so the expectations need only the labels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedredirect.replay_command import read_alert_durations
from shared.config import load_config
from shared.evaluate import STATES
from shared.records import LaunchOutcomes
from shared.replay import Timeline, recorded_config, replayed_timeline
from shared.replay_alerts import EVAL_INTERVAL, REPLAYED, Evaluation, Firing, alerts
from shared.replay_summary import launches
from tests.support.promtool import run_promtool
from tests.support.replay import failing_history, history

ROOT = Path(__file__).resolve().parents[2]
CHECKER = 'job="fedredirect-checker",instance="checker:9090"'
ROUTER = 'job="fedredirect-router",instance="router-0:8080"'
#: The labels each replayed alert carries besides ``severity`` (from its expression).
SCRAPE = {"job": "fedredirect-checker", "instance": "checker:9090"}


def labels(firing: Firing, severity: str) -> dict[str, str]:
    extra: dict[str, str] = {"severity": severity}
    if firing.alert in (
        "FedredirectNoEligibleMembers",
        "FedredirectReferenceStale",
        "FedredirectMemberLaunchesFailing",
        "FedredirectMemberExcluded",
    ):
        extra |= SCRAPE
    if firing.alert == "FedredirectVersionMismatchExcluded":
        extra |= SCRAPE | {"state": "version_mismatch"}
    if firing.member is not None:
        extra["member"] = firing.member
    return extra


def series(timeline: Timeline, picks: Sequence[tuple[float, str | None]]) -> list[dict[str, str]]:
    """What the checker and a router export at every minute of the timeline."""
    minutes = int((timeline.end - timeline.start) // EVAL_INTERVAL) + 1
    at = [timeline.start + k * EVAL_INTERVAL for k in range(minutes)]
    frames, k = [], 0
    for t in at:
        while k + 1 < len(timeline.frames) and timeline.frames[k + 1].at <= t:
            k += 1
        frames.append(timeline.frames[k])

    def values(numbers: Sequence[float | None]) -> str:
        """A series' samples; None: no sample (the series is absent then)."""
        return " ".join("_" if n is None else f"{n:g}" for n in numbers)

    out = [
        {"series": f"up{{{CHECKER}}}", "values": values([1] * minutes)},
        {
            "series": f"fedredirect_checker_last_cycle_timestamp_seconds{{{CHECKER}}}",
            "values": values([60 * i for i in range(minutes)]),
        },
        {
            "series": f"fedredirect_eligible_members{{{CHECKER}}}",
            "values": values([sum(s == "eligible" for s in f.states.values()) for f in frames]),
        },
        {
            "series": f"fedredirect_reference_stale{{{CHECKER}}}",
            "values": values([int(f.reference_stale) for f in frames]),
        },
        {
            "series": f"fedredirect_fallback_active{{{CHECKER}}}",
            "values": values([int(f.fallback) for f in frames]),
        },
    ]
    for name, member in timeline.config.members.items():
        out.append(
            {
                "series": f'fedredirect_member_weight{{{CHECKER},member="{name}"}}',
                "values": values([member.weight] * minutes),
            }
        )
        out.append(
            {
                "series": f'fedredirect_member_effective_weight{{{CHECKER},member="{name}"}}',
                "values": values([f.effective_weights.get(name, 0.0) for f in frames]),
            }
        )
        for state in STATES:
            out.append(
                {
                    "series": f'fedredirect_member_state{{{CHECKER},member="{name}",'
                    f'state="{state}"}}',
                    "values": values([int(f.states.get(name) == state) for f in frames]),
                }
            )
        # a member's launch outcomes, when its metrics are read; no ratio without launches
        counted = [f.outcomes.get(name) for f in frames]
        out.append(
            {
                "series": f'fedredirect_member_launches_in_window{{{CHECKER},member="{name}"}}',
                "values": values([o.launches if o else None for o in counted]),
            }
        )
        out.append(
            {
                "series": f'fedredirect_member_launch_failure_ratio{{{CHECKER},member="{name}"}}',
                "values": values([o.failure_ratio if o else None for o in counted]),
            }
        )
        cumulative, j, counts = [], 0, 0
        for t in at:
            while j < len(picks) and picks[j][0] <= t:
                counts += picks[j][1] == name
                j += 1
            cumulative.append(counts)
        out.append(
            {
                "series": f'fedredirect_redirects_total{{{ROUTER},member="{name}",'
                'reason="balancer"}',
                "values": values(cumulative),
            }
        )
    return out


def promtool_agrees(timeline: Timeline, tmp: Path) -> list[Firing]:
    picks = launches(timeline)
    firings = alerts(timeline, picks, read_alert_durations())
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    severity: dict[str, str] = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
            severity[rule["alert"]] = rule["labels"]["severity"]
    (tmp / "alerts.yml").write_text(yaml.safe_dump(rules))
    minutes = int((timeline.end - timeline.start) // EVAL_INTERVAL) + 1
    cases: list[dict[str, Any]] = []
    for k in range(minutes):
        t = timeline.start + k * EVAL_INTERVAL
        for alert in REPLAYED:
            now = [
                labels(f, severity[alert])
                for f in firings
                if f.alert == alert and f.fired_at <= t and (f.resolved_at or 1e18) > t
            ]
            cases.append(
                {
                    "eval_time": f"{k}m",
                    "alertname": alert,
                    "exp_alerts": [{"exp_labels": lab} for lab in now],
                }
            )
    test = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series(timeline, picks),
                "alert_rule_test": cases,
            }
        ],
    }
    (tmp / "replay_test.yml").write_text(json.dumps(test))  # JSON is YAML
    run = run_promtool("test", "rules", "replay_test.yml", cwd=tmp, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    return firings


def incident(config: Mapping[str, Any] | None = None) -> Timeline:
    lines = (ROOT / "examples/incident-2022-01-27.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    chosen = load_config(ROOT / "examples/incident-majority.yaml") if config else None
    recorded = recorded_config(events)
    assert recorded is not None
    return replayed_timeline(events, chosen or recorded)


@pytest.mark.parametrize("majority", [False, True], ids=["prime", "majority"])
def test_the_incident_fires_the_same_alerts_in_promtool(majority: bool, tmp_path: Path) -> None:
    firings = promtool_agrees(incident({"majority": True} if majority else None), tmp_path)
    assert {f.alert for f in firings} >= {"FedredirectVersionMismatchExcluded"}


def test_nobody_eligible_fires_the_same_alerts_in_promtool(tmp_path: Path) -> None:
    """Both members unhealthy for 25 minutes: the prime takes every launch (fallback), and
    both are out for longer than 15 minutes."""
    down = {m: (lambda t: {"status": "unhealthy"} if 300 <= t < 1800 else {}) for m in "ab"}
    events = history(end=2400, **down)
    config = recorded_config(events)
    assert config is not None
    firings = promtool_agrees(replayed_timeline(events, config), tmp_path)
    assert {f.alert for f in firings} == {
        "FedredirectNoEligibleMembers",
        "FedredirectFallbackActive",
        "FedredirectTrafficConcentrated",
        "FedredirectMemberExcluded",
    }
    excluded = [
        (f.member, f.resolved_at) for f in firings if f.alert == "FedredirectMemberExcluded"
    ]
    assert sorted(excluded, key=str) == [("a", 1800.0), ("b", 1800.0)]


def test_a_member_out_for_long_fires_the_same_alert_in_promtool(tmp_path: Path) -> None:
    """b is unreachable from 300 s, then its record goes stale (no observation from 900 s)
    until 1500 s, while a serves. The launches follow the effective weights, so only the
    exclusion shows: 15 minutes after it began, whichever state b was in meanwhile."""
    out = {"b": lambda t: {"status": "unreachable"} if 300 <= t < 900 else {}}
    events = [
        e
        for e in history(end=2400, **out)
        if not (e.get("member") == "b" and e["event"] == "observation" and 900 <= e["at"] < 1500)
    ]
    config = recorded_config(events)
    assert config is not None
    timeline = replayed_timeline(events, config)
    assert {f.states["b"] for f in timeline.frames if 300 <= f.at < 1500} == {
        "unreachable",
        "stale",
    }
    firings = promtool_agrees(timeline, tmp_path)
    assert [(f.alert, f.member, f.fired_at, f.resolved_at) for f in firings] == [
        ("FedredirectMemberExcluded", "b", 1200.0, 1500.0)
    ]


@dataclass(frozen=True)
class Frame:
    """An exported view with only member states (the other fields empty)."""

    states: Mapping[str, str]
    fallback: bool = False
    reference_stale: bool = False
    outcomes: Mapping[str, LaunchOutcomes] = field(default_factory=dict)
    effective_weights: Mapping[str, float] = field(default_factory=dict)


def test_member_excluded_holds_for_stale_unreachable_unhealthy_with_a_weight() -> None:
    """Not drained (deliberate), full (capacity), failing or version_mismatch (their own
    alerts), nor a member weighted 0 (the config drops those; the rule checks all the same)."""
    states = {state: state for state in STATES} | {"unreachable, weight 0": "unreachable"}
    weights = {name: 0.0 if "weight 0" in name else 1.0 for name in states}
    e = Evaluation(0.0, Frame(states), (), (), 0, weights)
    assert REPLAYED["FedredirectMemberExcluded"](e) == {"stale", "unreachable", "unhealthy"}


def test_failing_launches_fire_the_same_alert_in_promtool(tmp_path: Path) -> None:
    """b fails half of its launches for 15 minutes, ejected for the first 5: the alert on
    its failure ratio fires after 10 minutes and resolves with the failures."""
    events = failing_history()
    config = recorded_config(events)
    assert config is not None
    firings = promtool_agrees(replayed_timeline(events, config), tmp_path)
    assert [(f.alert, f.member, f.fired_at) for f in firings] == [
        ("FedredirectMemberLaunchesFailing", "b", 900.0)
    ]
