"""The alert rules: promtool accepts and unit-tests them, every alert links to its runbook
section, and every metric they query is one the product exports.

promtool comes from Debian's ``prometheus`` package. Without it these tests fail rather than
skip: untested alert rules are how an incident goes unnoticed for hours.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.evaluate import STATES
from tests.support.promql import (
    COUNTERS,
    GAUGES,
    HISTOGRAMS,
    exported_series_names,
    metric_names,
    unknown_metrics,
)
from tests.support.promtool import run_promtool

ROOT = Path(__file__).resolve().parents[2]
RULES = "deploy/prometheus/alerts.yml"
RULE_TESTS = "deploy/prometheus/tests/alerts_test.yml"
RUNBOOK = ROOT / "docs/runbook.md"
RUNBOOK_URL = "https://github.com/fedredirect/fedredirect/blob/main/docs/runbook.md#"
SOURCES_OF_METRICS = ("checker/metrics.py", "router/metrics.py")


# --- the rule file --------------------------------------------------------------------------


def load_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((ROOT / RULES).read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def load_rule_tests() -> list[dict[str, Any]]:
    doc = yaml.safe_load((ROOT / RULE_TESTS).read_text(encoding="utf-8"))
    tests: list[dict[str, Any]] = doc["tests"]
    return tests


ALERTS = load_rules()
ALERT_NAMES = [rule["alert"] for rule in ALERTS]
REQUIRED_ALERTS = {
    "FedredirectNoEligibleMembers",
    "FedredirectReferenceStale",
    "FedredirectVersionMismatchExcluded",
    "FedredirectMemberLaunchesFailing",
    "FedredirectMemberStarved",
    "FedredirectTrafficConcentrated",
    "FedredirectMemberExcluded",
    "FedredirectCheckerHeartbeatStale",
    "FedredirectCheckerDown",
    "FedredirectCheckerReplicaDown",
    "FedredirectRouterViewStale",
    "FedredirectFallbackActive",
}


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lowercase, punctuation dropped, spaces
    turned into hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    """The anchors of the runbook's headings (not of ``#`` lines inside code blocks)."""
    text = re.sub(r"(?ms)^```.*?^```", "", RUNBOOK.read_text(encoding="utf-8"))
    headings = re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE)
    return {github_anchor(m.group(1)) for m in headings}


def seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", duration))


# --- tests ----------------------------------------------------------------------------------


def test_promtool_accepts_the_rules() -> None:
    result = run_promtool("check", "rules", RULES, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = run_promtool("test", "rules", RULE_TESTS, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_required_alerts_exist() -> None:
    assert set(ALERT_NAMES) >= REQUIRED_ALERTS
    assert len(ALERT_NAMES) == len(set(ALERT_NAMES)), "duplicate alert names"


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_NAMES)
def test_alert_has_severity_and_annotations(rule: dict[str, Any]) -> None:
    assert rule.get("labels", {}).get("severity") in ("page", "ticket")
    annotations = rule.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key, "")).strip(), f"{rule['alert']}: no {key}"
    assert "for" in rule, f"{rule['alert']}: no for: (a single bad scrape would alert)"


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_NAMES)
def test_runbook_url_points_to_the_alerts_section(rule: dict[str, Any]) -> None:
    url = rule["annotations"]["runbook_url"]
    assert url.startswith(RUNBOOK_URL), url
    anchor = url.removeprefix(RUNBOOK_URL)
    assert anchor == rule["alert"].lower(), "the section heading must be the alert name"
    assert anchor in runbook_anchors(), f"docs/runbook.md has no heading for #{anchor}"


def test_runbook_links_within_the_page_resolve() -> None:
    links = set(re.findall(r"\]\(#([^)]+)\)", RUNBOOK.read_text(encoding="utf-8")))
    assert links, "expected cross references between runbook sections"
    assert links <= runbook_anchors(), links - runbook_anchors()


def test_github_anchor() -> None:
    assert github_anchor("FedredirectMemberStarved") == "fedredirectmemberstarved"
    assert github_anchor("How fedredirect decides") == "how-fedredirect-decides"
    assert github_anchor("States & the reference (v2)") == "states--the-reference-v2"


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_NAMES)
def test_rule_queries_only_exported_metrics(rule: dict[str, Any]) -> None:
    expr = rule["expr"]
    assert metric_names(expr), f"no metric found in {expr!r}"
    assert not unknown_metrics(expr), f"not exported by fedredirect: {unknown_metrics(expr)}"


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_NAMES)
def test_annotations_name_only_exported_metrics(rule: dict[str, Any]) -> None:
    """Annotation templates query metrics too (``query "fedredirect_reference_info"``); a
    renamed metric would silently empty the description."""
    text = " ".join(str(v) for v in rule["annotations"].values())
    names = set(re.findall(r"\b(?:fedredirect|http)_\w+", text))
    assert names <= exported_series_names(), names - exported_series_names()


def test_state_labels_in_rules_are_known_states() -> None:
    used: set[str] = set()
    for rule in ALERTS:
        for match in re.finditer(r'\bstate\s*=~?\s*"([^"]*)"', rule["expr"]):
            used.update(match.group(1).split("|"))
    assert used
    assert used <= set(STATES), used - set(STATES)


def test_contract_is_what_the_source_exports() -> None:
    """Guards the contract itself, both ways: each fedredirect_* family in it is defined in
    the metrics code, and each one defined there is in it (prometheus_client adds
    ``_total`` to counter names)."""
    source = "\n".join((ROOT / path).read_text(encoding="utf-8") for path in SOURCES_OF_METRICS)
    defined = set(re.findall(r'"(fedredirect_[a-z0-9_]+)"', source))
    families = {name.removesuffix("_total") for name in GAUGES | COUNTERS | HISTOGRAMS}
    contract = {f for f in families if f.startswith("fedredirect_")}
    assert contract - defined == set(), f"in the contract, not in {SOURCES_OF_METRICS}"
    assert defined - contract == set(), "exported but missing from the contract above"


def test_every_alert_has_a_firing_and_a_quiet_test_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for group in load_rule_tests():
        for case in group.get("alert_rule_test") or []:
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert set(ALERT_NAMES) <= firing, set(ALERT_NAMES) - firing
    assert set(ALERT_NAMES) <= quiet, set(ALERT_NAMES) - quiet


def test_incident_replay_pages_within_30_minutes() -> None:
    """The replayed incident must page (not just ticket) within 30 minutes through one of
    the alerts that see it directly; promtool proves the expectation holds."""
    replay = [g for g in load_rule_tests() if g.get("name", "").startswith("incident replay")]
    assert len(replay) == 1
    severity = {rule["alert"]: rule["labels"]["severity"] for rule in ALERTS}
    fired = {
        case["alertname"]
        for case in replay[0]["alert_rule_test"]
        if case.get("exp_alerts") and seconds(case["eval_time"]) <= 30 * 60
    }
    direct = fired & {"FedredirectMemberStarved", "FedredirectVersionMismatchExcluded"}
    assert direct, fired
    assert all(severity[name] == "page" for name in direct)
