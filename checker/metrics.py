"""The checker's Prometheus metrics, served at /metrics on ``--metrics-port``.

View-derived gauges are produced at scrape time from the view the checker keeps (evaluated
when a verdict may have changed), with ages measured at the scrape against the records last
published, so ages move and a removed member's series disappear instead of freezing.
``fedredirect_member_state`` has one series per known state with exactly one at 1, so every
transition shows on a graph (the replaced redirector's gauge left the old label series
behind at 1).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.evaluate import STATES, View, age
from shared.status import Records, reference_observed_at

#: The writer's view and the records it last published (None on a standby).
Published = Callable[[], tuple[View, Records] | None]

_LABEL_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def version_label(key: str) -> str:
    """A version key as a Prometheus label name: ``builder_info.build_image`` ->
    ``builder_info_build_image``."""
    label = _LABEL_UNSAFE.sub("_", key)
    return label if not label[:1].isdigit() and not label.startswith("__") else f"v_{label}"


class ViewCollector(Collector):
    """Gauges describing the evaluated view, computed at scrape time."""

    def __init__(
        self,
        published: Published,
        last_cycle: Callable[[], float | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.published = published
        self.last_cycle = last_cycle
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        published = self.published()
        last = self.last_cycle()
        cycle = GaugeMetricFamily(
            "fedredirect_checker_last_cycle_timestamp_seconds",
            "UNIX time of the checker's last successful publication",
        )
        if last is not None:
            cycle.add_metric([], last)
        yield cycle
        if published is None:
            return
        view, records = published
        period = GaugeMetricFamily(
            "fedredirect_checker_period_seconds", "configured check period (check.period)"
        )
        period.add_metric([], view.config.check.period)
        yield period
        yield from member_metrics(view)
        yield from outcome_metrics(records)
        yield from reference_metrics(view, age(self.clock(), reference_observed_at(view, records)))


def member_metrics(view: View) -> Iterator[Metric]:
    eligible = GaugeMetricFamily(
        "fedredirect_member_eligible", "1 if the member can receive launches now", labels=["member"]
    )
    state = GaugeMetricFamily(
        "fedredirect_member_state",
        "1 for the member's current state, 0 for every other known state",
        labels=["member", "state"],
    )
    weight = GaugeMetricFamily("fedredirect_member_weight", "configured weight", labels=["member"])
    effective = GaugeMetricFamily(
        "fedredirect_member_effective_weight",
        "weight launches are balanced by now: weight x capacity share x slow-start factor, "
        "0 when excluded",
        labels=["member"],
    )
    pods = GaugeMetricFamily(
        "fedredirect_member_pods", "total pods reported by /health", labels=["member"]
    )
    quota = GaugeMetricFamily(
        "fedredirect_member_pod_quota", "pod quota reported by /health", labels=["member"]
    )
    match = GaugeMetricFamily(
        "fedredirect_member_version_match",
        "1 if the member's versions equal the reference on the compared keys",
        labels=["member"],
    )
    for m in view.members:
        eligible.add_metric([m.name], 1.0 if m.eligible else 0.0)
        for known in STATES:
            state.add_metric([m.name, known], 1.0 if m.state == known else 0.0)
        weight.add_metric([m.name], m.weight)
        effective.add_metric([m.name], m.effective_weight)
        if m.total_pods is not None:
            pods.add_metric([m.name], m.total_pods)
        if m.quota is not None:
            quota.add_metric([m.name], m.quota)
        if view.reference.versions is not None:
            match.add_metric([m.name], 0.0 if m.version_differences else 1.0)
    count = GaugeMetricFamily("fedredirect_eligible_members", "members that can receive launches")
    count.add_metric([], len(view.eligible))
    yield from (eligible, state, weight, effective, pods, quota, match, count)


def outcome_metrics(records: Records) -> Iterator[Metric]:
    """Each member's launches in the outcomes window, as its record was last published
    (members whose metrics are not read have no series; the ratio has none while the
    window holds no launch, rather than a 0 that would read as "all launches succeed")."""
    ratio = GaugeMetricFamily(
        "fedredirect_member_launch_failure_ratio",
        "failed launches / launches in the outcomes window, from the member's /metrics",
        labels=["member"],
    )
    launches = GaugeMetricFamily(
        "fedredirect_member_launches_in_window",
        "launches that ended in the outcomes window, from the member's /metrics",
        labels=["member"],
    )
    for name, obs in records.observations.items():
        outcomes = obs.outcomes
        if outcomes is None:
            continue
        launches.add_metric([name], outcomes.launches)
        if outcomes.failure_ratio is not None:
            ratio.add_metric([name], outcomes.failure_ratio)
    yield from (ratio, launches)


def reference_metrics(view: View, reference_age: float | None) -> Iterator[Metric]:
    ref = view.reference
    ages = GaugeMetricFamily(
        "fedredirect_reference_age_seconds", "age of the reference version's source observation"
    )
    if reference_age is not None:
        ages.add_metric([], reference_age)
    stale = GaugeMetricFamily(
        "fedredirect_reference_stale",
        "1 while the reference is stale and version gating is suspended",
    )
    stale.add_metric([], 1.0 if ref.stale else 0.0)
    keys = sorted(ref.versions or {})
    info = GaugeMetricFamily(
        "fedredirect_reference_info",
        "always 1; labels carry the reference versions, policy and source",
        labels=["policy", "source", *(version_label(k) for k in keys)],
    )
    info.add_metric([ref.policy, ref.source, *((ref.versions or {})[k] for k in keys)], 1.0)
    gate = GaugeMetricFamily(
        "fedredirect_version_gate_suspended",
        "1 while version gating is suspended (stale reference or nobody left)",
    )
    gate.add_metric([], 1.0 if view.gate_suspended else 0.0)
    fallback = GaugeMetricFamily(
        "fedredirect_fallback_active", "1 while nobody is eligible and the fallback policy applies"
    )
    fallback.add_metric([], 1.0 if view.fallback_active else 0.0)
    yield from (ages, stale, info, gate, fallback)


class CheckerMetrics:
    """Everything the checker exports, in a registry of its own."""

    def __init__(self, published: Published, last_cycle: Callable[[], float | None]) -> None:
        self.registry = CollectorRegistry()
        self.check_duration = Histogram(
            "fedredirect_check_duration_seconds",
            "time to fetch one member endpoint, retries included",
            ["member", "endpoint"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.check_failures = Counter(
            "fedredirect_check_failures",
            "checks that got no usable answer, by failure class",
            ["member", "endpoint", "reason"],
            registry=self.registry,
        )
        self.ejections = Counter(
            "fedredirect_member_ejections",
            "ejections for failing launches (shared.outcomes) this checker made as the writer",
            ["member"],
            registry=self.registry,
        )
        self.registry.register(ViewCollector(published, last_cycle))
