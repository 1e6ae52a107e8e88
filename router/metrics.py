"""The router's Prometheus metrics: HTTP metrics for the FastAPI endpoints, plus redirects.

Redirects are counted in a plain dict on the hot path and turned into
``fedredirect_redirects_total`` only at scrape time, so counting costs a dict increment.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator

from router.redirect import RedirectApp
from router.snapshot import SnapshotHolder


class RouterCollector(Collector):
    def __init__(self, holder: SnapshotHolder, redirect: RedirectApp) -> None:
        self.holder = holder
        self.redirect = redirect

    def collect(self) -> Iterator[Metric]:
        redirects = CounterMetricFamily(
            "fedredirect_redirects",
            "launches redirected to a member, by why that member was chosen",
            labels=["member", "reason"],
        )
        for (member, reason), count in sorted(self.redirect.counts.items()):
            redirects.add_metric([member, reason], count)
        yield redirects
        age = GaugeMetricFamily(
            "fedredirect_router_view_age_seconds",
            "seconds since this router last read the store successfully",
        )
        view_age = self.holder.view_age()
        if view_age is not None:
            age.add_metric([], view_age)
        yield age
        view = self.holder.view
        fallback = GaugeMetricFamily(
            "fedredirect_router_fallback_active",
            "1 while this router applies the fallback policy (nobody eligible)",
        )
        heartbeat = GaugeMetricFamily(
            "fedredirect_router_checker_heartbeat_age_seconds",
            "age of the checker heartbeat in the view this router serves",
        )
        outage = GaugeMetricFamily(
            "fedredirect_router_outage_active",
            "1 while the checker heartbeat is too old and outage.policy applies",
        )
        if view is not None:
            fallback.add_metric([], 1.0 if view.fallback_active else 0.0)
            outage.add_metric([], 1.0 if view.outage_active else 0.0)
            if view.heartbeat_age is not None:
                heartbeat.add_metric([], view.heartbeat_age)
        yield fallback
        yield outage
        yield heartbeat
        store_up = GaugeMetricFamily(
            "fedredirect_router_store_up", "1 if the last read of the store succeeded"
        )
        store_up.add_metric([], 0.0 if self.holder.sync_error else 1.0)
        yield store_up


def instrument(api: FastAPI, holder: SnapshotHolder, redirect: RedirectApp) -> CollectorRegistry:
    """Expose /metrics on ``api`` with a registry of this router's own."""
    registry = CollectorRegistry()
    registry.register(RouterCollector(holder, redirect))
    Instrumentator(registry=registry, excluded_handlers=["/metrics"]).instrument(api).expose(
        api, include_in_schema=False
    )
    return registry
