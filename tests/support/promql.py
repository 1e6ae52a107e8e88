"""What the product exports, by metric type, and the metric names a PromQL query selects:
the contract the alert rules and the dashboard are checked against."""

from __future__ import annotations

import re

# --- the contract: what the product exports, by metric type --------------------------------

GAUGES = frozenset(
    {
        # checker
        "fedredirect_member_eligible",
        "fedredirect_member_state",
        "fedredirect_member_weight",
        "fedredirect_member_effective_weight",  # also the router, from its own view
        "fedredirect_member_pods",
        "fedredirect_member_pod_quota",
        "fedredirect_member_version_match",
        "fedredirect_member_launch_failure_ratio",
        "fedredirect_member_launches_in_window",
        "fedredirect_reference_age_seconds",
        "fedredirect_reference_stale",
        "fedredirect_reference_info",
        "fedredirect_version_gate_suspended",
        "fedredirect_fallback_active",
        "fedredirect_checker_last_cycle_timestamp_seconds",
        "fedredirect_checker_period_seconds",
        "fedredirect_eligible_members",
        # router
        "fedredirect_router_view_age_seconds",
        "fedredirect_router_fallback_active",
        "fedredirect_router_outage_active",
        "fedredirect_router_checker_heartbeat_age_seconds",
        "fedredirect_router_store_up",
        "fedredirect_router_routers",
        "fedredirect_router_launches_since_report",
    }
)
COUNTERS = frozenset(
    {
        "fedredirect_check_failures_total",
        "fedredirect_member_ejections_total",
        "fedredirect_redirects_total",
        "fedredirect_router_evaluations_total",
        "fedredirect_router_launches_passed_over_total",
        "http_requests_total",  # prometheus-fastapi-instrumentator, router
    }
)
HISTOGRAMS = frozenset(
    {
        "fedredirect_check_duration_seconds",
        "http_request_duration_seconds",
        "http_request_duration_highr_seconds",
    }
)
SUMMARIES = frozenset({"http_request_size_bytes", "http_response_size_bytes"})
FROM_PROMETHEUS = frozenset({"up"})  # written by Prometheus itself for every target


def exported_series_names() -> frozenset[str]:
    """Every series name a query may use: histograms and summaries by their suffixes."""
    return (
        GAUGES
        | COUNTERS
        | FROM_PROMETHEUS
        | {h + s for h in HISTOGRAMS for s in ("_bucket", "_count", "_sum")}
        | {s + x for s in SUMMARIES for x in ("", "_count", "_sum")}
    )


# --- metric names in PromQL -----------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


AGGREGATIONS = _words(
    "sum min max avg group stddev stdvar count count_values bottomk topk quantile "
    "limitk limit_ratio"
)
KEYWORDS = _words(
    "by without on ignoring group_left group_right bool and or unless offset atan2 inf nan "
    "start end"
)
FUNCTIONS = _words(
    """
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes
    clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year
    days_in_month deg delta deriv double_exponential_smoothing exp floor histogram_avg
    histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar
    histogram_sum holt_winters hour idelta increase info irate label_join label_replace
    last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute month pi
    predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn sin
    sinh sort sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time
    stdvar_over_time sum_over_time tan tanh time timestamp vector year
    """
)
NOT_METRICS = AGGREGATIONS | KEYWORDS | FUNCTIONS

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_LABEL_LISTS = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
# Not after a word character (1e3, 5m), a dot (0.5) or $ (Grafana's $__rate_interval).
_IDENTIFIER = re.compile(r"(?<![\w.:$])[a-zA-Z_:][\w:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label names, functions, aggregations,
    keywords, durations and Grafana variables are not)."""
    bare = _STRINGS.sub(" ", expr)
    bare = _MATCHERS.sub(" ", bare)
    bare = _RANGES.sub(" ", bare)
    bare = _LABEL_LISTS.sub(" ", bare)
    return {name for name in _IDENTIFIER.findall(bare) if name.lower() not in NOT_METRICS}


def unknown_metrics(expr: str) -> set[str]:
    return metric_names(expr) - exported_series_names()
