"""BinderHub's build and launch metrics (binderhub/builder.py), one registry per simulated
member, so a member's ``/metrics`` reads as a real BinderHub's does.

Names, labels and buckets are BinderHub's. Its ``status`` label: ``success`` for a launch
that reached ``ready``; ``failure`` for one whose last attempt failed, ``retry`` for each
attempt before it (both with ``retries="-1"``); a quota refusal is counted only in
``binderhub_launch_count`` with the quota's name (``pod_quota``), never in the histogram.
"""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

BUILD_BUCKETS = [60, 120, 300, 600, 1800, 3600, 7200, float("inf")]
LAUNCH_BUCKETS = [2, 5, 10, 20, 30, 60, 120, 300, 600, float("inf")]


class LaunchMetrics:
    """BinderHub's build and launch metrics of one member, and their exposition."""

    def __init__(self) -> None:
        # Also the process, platform and gc collectors of prometheus-client's default
        # registry, which BinderHub serves too: a reader meets what a real member sends.
        self.registry = registry = CollectorRegistry()
        for collector in (GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR):
            registry.register(collector)
        self.build_time = Histogram(
            "binderhub_build_time_seconds",
            "Histogram of build times",
            ["status"],
            buckets=BUILD_BUCKETS,
            registry=registry,
        )
        self.launch_time = Histogram(
            "binderhub_launch_time_seconds",
            "Histogram of launch times",
            ["status", "retries"],
            buckets=LAUNCH_BUCKETS,
            registry=registry,
        )
        self.build_count = Counter(
            "binderhub_build_count",
            "Counter of builds by repo",
            ["status", "provider", "repo"],
            registry=registry,
        )
        self.launch_count = Counter(
            "binderhub_launch_count",
            "Counter of launches by repo",
            ["status", "provider", "repo"],
            registry=registry,
        )
        self.builds_in_progress = Gauge(
            "binderhub_inprogress_builds", "Builds currently in progress", registry=registry
        )
        self.launches_in_progress = Gauge(
            "binderhub_inprogress_launches", "Launches currently in progress", registry=registry
        )

    def exposition(self) -> bytes:
        """The body of ``GET /metrics`` (Prometheus text format 0.0.4)."""
        return generate_latest(self.registry)
