"""The Grafana dashboard: every query is valid PromQL over metrics the product exports.

The metric contract and the PromQL name extractor (tests/support/promql.py) are those
test_alert_rules.py uses, so alerts and dashboard are held to the same list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.promql import exported_series_names, metric_names, unknown_metrics
from tests.support.promtool import run_promtool

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/fedredirect.json"
DATASOURCE = "${DS_PROMETHEUS}"
# Grafana variables, replaced by values of the right type so promtool can parse the query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$member": ".*",
}


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel."""
    return [
        (panel.get("title", "?"), target["expr"])
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def variable_metrics(dashboard: dict[str, Any]) -> set[str]:
    """Metrics used by query variables, e.g. ``label_values(fedredirect_member_weight, m)``."""
    names: set[str] = set()
    for var in dashboard["templating"]["list"]:
        if var.get("type") != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = re.fullmatch(r"\s*label_values\(\s*(.*),\s*\w+\s*\)\s*", query)
        assert match, f"unexpected variable query {query!r}"
        names |= metric_names(match.group(1))
    return names


def substitute(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


DASHBOARD_DOC = load_dashboard()
QUERIES = panel_queries(DASHBOARD_DOC)


# --- the extractor --------------------------------------------------------------------------


def test_extractor_finds_metrics_and_nothing_else() -> None:
    expr = (
        'sum by (member) (rate(fedredirect_redirects_total{member=~"$member"}'
        "[$__rate_interval])) / ignoring (member) group_left sum(rate(fedredirect_redirects_total"
        "[5m] offset 1h)) > 0.9 and on (job) up == 1e3"
    )
    assert metric_names(expr) == {"fedredirect_redirects_total", "up"}


def test_extractor_finds_a_made_up_metric() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le) (rate(fedredirect_made_up_bucket{x="y"}[5m])))'
        " / on () group_left () max(fedredirect_member_weight) or vector(1)"
    )
    assert metric_names(expr) == {"fedredirect_made_up_bucket", "fedredirect_member_weight"}
    assert unknown_metrics(expr) == {"fedredirect_made_up_bucket"}


def test_contract_maps_histogram_and_counter_series() -> None:
    names = exported_series_names()
    assert {
        "fedredirect_check_duration_seconds_bucket",
        "fedredirect_check_duration_seconds_count",
        "fedredirect_check_duration_seconds_sum",
        "fedredirect_redirects_total",
        "fedredirect_check_failures_total",
    } <= names
    assert "fedredirect_check_duration_seconds" not in names  # no such series, only suffixed
    assert "fedredirect_redirects" not in names


# --- the dashboard --------------------------------------------------------------------------


def test_dashboard_shape() -> None:
    assert 36 <= DASHBOARD_DOC["schemaVersion"] <= 41
    variables = {v["name"]: v for v in DASHBOARD_DOC["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    ids = [p["id"] for p in all_panels(DASHBOARD_DOC["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in all_panels(DASHBOARD_DOC["panels"]):
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel.get("title")
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == DATASOURCE, panel.get("title")


def test_dashboard_has_the_panels_operators_need() -> None:
    """The questions of the incident: who gets launches, in which state is each member, what
    is the reference and how old, are the checks and routers alive."""
    exprs = " ".join(expr for _, expr in QUERIES)
    for needed in (
        "fedredirect_redirects_total",
        "fedredirect_member_state",
        "fedredirect_eligible_members",
        "fedredirect_reference_age_seconds",
        "fedredirect_reference_stale",
        "fedredirect_check_duration_seconds_bucket",
        "fedredirect_check_failures_total",
        "fedredirect_router_view_age_seconds",
        "fedredirect_fallback_active",
        "fedredirect_router_fallback_active",
        "fedredirect_member_launch_failure_ratio",
        "fedredirect_member_launches_in_window",
        "fedredirect_member_ejections_total",
    ):
        assert needed in exprs, f"no panel queries {needed}"
    share = [e for title, e in QUERIES if title == "Traffic share per member"]
    assert share and "group_left" in share[0], "traffic share must divide by the total"


@pytest.mark.parametrize(("title", "expr"), QUERIES, ids=[t for t, _ in QUERIES])
def test_panel_queries_only_exported_metrics(title: str, expr: str) -> None:
    assert metric_names(expr), f"{title}: no metric found in {expr!r}"
    assert not unknown_metrics(expr), f"{title}: not exported: {unknown_metrics(expr)}"


def test_variables_query_only_exported_metrics() -> None:
    names = variable_metrics(DASHBOARD_DOC)
    assert names
    assert names <= exported_series_names(), names - exported_series_names()


def test_panel_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every query (Grafana variables substituted) as a recording rule."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": substitute(expr)}
                    for i, (_, expr) in enumerate(QUERIES)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def panel_query(title: str, index: int = 0) -> str:
    return [expr for t, expr in QUERIES if t == title][index]


#: Two checkers: the writer (checker-a) finishing a cycle a minute, the standby (checker-b)
#: exporting what it saw ten minutes ago.
WRITER = 'job="fedredirect-checker",instance="checker-a:9090"'
STANDBY = 'job="fedredirect-checker",instance="checker-b:9090"'
CHECKERS = [
    (f"fedredirect_checker_last_cycle_timestamp_seconds{{{WRITER}}}", "0+60x20"),
    (f"fedredirect_checker_last_cycle_timestamp_seconds{{{STANDBY}}}", "-600x20"),
]


def state_mapped(code: int) -> set[str]:
    """What the Member state panel shows for the state code ``code``."""
    return {
        m["options"][str(code)]["text"]
        for p in all_panels(DASHBOARD_DOC["panels"])
        if p.get("title") == "Member state"
        for m in p["fieldConfig"]["defaults"]["mappings"]
    }


def assert_promtool_evaluates(
    path: Path, series: list[tuple[str, str]], cases: list[dict[str, Any]]
) -> None:
    """promtool evaluates each case (an expr and its expected samples) over ``series``, one
    sample a minute, as the case says; the unit test file is written to ``path``."""
    unit_test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "promql_expr_test": cases,
            }
        ],
    }
    path.write_text(yaml.safe_dump(unit_test, sort_keys=False), encoding="utf-8")
    result = run_promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_key_panels_compute_what_they_show(tmp_path: Path) -> None:
    """Evaluate the traffic share and the member state panels with promtool on series of a
    known situation: two checkers, the standby (checker-b) exporting a frozen view; alpha
    full, beta version_mismatch in the writer's view; 3 of 4 launches go to alpha."""
    router = 'job="fedredirect-router",instance="router-0:8080"'
    series = [
        *CHECKERS,
        (f'fedredirect_redirects_total{{{router},member="alpha",reason="fallback"}}', "0+30x20"),
        (f'fedredirect_redirects_total{{{router},member="beta",reason="cookie"}}', "0+10x20"),
    ]
    states = {
        WRITER: {"alpha": "full", "beta": "version_mismatch"},
        STANDBY: {"alpha": "eligible", "beta": "eligible"},
    }
    for checker, members in states.items():
        for member, current in members.items():
            for state in ("eligible", "version_mismatch", "full", "drained"):
                name = f'fedredirect_member_state{{{checker},member="{member}",state="{state}"}}'
                series.append((name, f"{int(state == current)}x20"))
    share = substitute(panel_query("Traffic share per member"))
    assert state_mapped(1) == {"version_mismatch"}, "the state codes and the value mapping disagree"
    assert_promtool_evaluates(
        tmp_path / "dashboard_test.yml",
        series,
        [
            {
                # rounded: promtool compares floats exactly
                "expr": f"round({share}, 0.001)",
                "eval_time": "10m",
                "exp_samples": [
                    {"labels": '{member="alpha"}', "value": 0.75},
                    {"labels": '{member="beta"}', "value": 0.25},
                ],
            },
            {
                # value mapping: 0 eligible, 1 version_mismatch, 2 full, ...
                "expr": substitute(panel_query("Member state")),
                "eval_time": "10m",
                "exp_samples": [
                    {"labels": '{member="alpha"}', "value": 2},
                    {"labels": '{member="beta"}', "value": 1},
                ],
            },
            {
                "expr": substitute(panel_query("Members by state")),
                "eval_time": "10m",
                "exp_samples": [
                    {"labels": '{state="eligible"}', "value": 0},
                    {"labels": '{state="version_mismatch"}', "value": 1},
                    {"labels": '{state="full"}', "value": 1},
                    {"labels": '{state="drained"}', "value": 0},
                ],
            },
        ],
    )


def test_a_failing_member_has_its_state_code_and_its_failure_ratio(tmp_path: Path) -> None:
    """beta ejected for failing launches (state code 7 in the Member state panel), with the
    writer's failure ratio; the standby (checker-b) exports a frozen ratio nobody sees."""
    series = [
        *CHECKERS,
        (f'fedredirect_member_launch_failure_ratio{{{WRITER},member="beta"}}', "0.5x20"),
        (f'fedredirect_member_launch_failure_ratio{{{STANDBY},member="beta"}}', "0.1x20"),
        (f'fedredirect_member_state{{{WRITER},member="beta",state="failing"}}', "1x20"),
        (f'fedredirect_member_state{{{WRITER},member="beta",state="eligible"}}', "0x20"),
    ]
    assert state_mapped(7) == {"failing"}, "the state codes and the value mapping disagree"
    assert_promtool_evaluates(
        tmp_path / "dashboard_failing_test.yml",
        series,
        [
            {
                "expr": substitute(panel_query("Member state")),
                "eval_time": "10m",
                "exp_samples": [{"labels": '{member="beta"}', "value": 7}],
            },
            {
                "expr": substitute(panel_query("Launch failure ratio")),
                "eval_time": "10m",
                "exp_samples": [
                    {
                        "labels": "fedredirect_member_launch_failure_ratio"
                        f'{{{WRITER},member="beta"}}',
                        "value": 0.5,
                    }
                ],
            },
        ],
    )
