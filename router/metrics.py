"""The router's Prometheus metrics: HTTP metrics for the FastAPI endpoints, plus redirects.

Redirects are counted on the hot path by an integer increment on their route
(:mod:`router.routes`) and turned into ``fedredirect_redirects_total`` only at scrape time;
so are the launches a member was passed over for by its bound (``load_balancer: bounded``),
``fedredirect_router_launches_passed_over_total``.

With several worker processes (``fedredirect router --workers N``) prometheus-client's
multiprocess mode is on (``PROMETHEUS_MULTIPROC_DIR``): each worker copies its redirect
counts into its own file every second and just before it answers a scrape, the HTTP metrics
go to the same files, and a scrape sums the files of every worker that ever ran, so whichever
worker answers gives the same totals and a restarted worker's counts are kept. The gauges
(view age, fallback, outage, store, effective weights) are those of the worker that answers:
each keeps its own view of the same store, and its own launches in it.
``fedredirect_router_evaluations_total`` counts how often the view was evaluated (only when
a verdict may have changed: an idle federation costs nothing), summed over workers like the
redirects. ``fedredirect_router_routers`` and
``fedredirect_router_launches_since_report`` are what this worker counts its launches
against the members' free pods with (:mod:`router.sent`): each worker is a router of its
own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.responses import Response

from router.redirect import RedirectApp
from router.sent import LaunchCounts
from router.snapshot import SnapshotHolder
from shared.evaluate import View

#: Set (to a directory) when the router runs as several workers; see the module docstring.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: How often a worker copies its redirect counts to its file (it also does before a scrape).
SHARE_INTERVAL = 1.0


class RouterCollector(Collector):
    """This process's view gauges, and its redirect counts unless they are shared in files."""

    def __init__(self, holder: SnapshotHolder, redirect: RedirectApp, *, redirects: bool) -> None:
        self.holder = holder
        self.redirect = redirect
        self.redirects = redirects

    def collect(self) -> Iterator[Metric]:
        if self.redirects:
            redirects = CounterMetricFamily(
                "fedredirect_redirects",
                "launches redirected to a member, by why that member was chosen",
                labels=["member", "reason"],
            )
            for (member, reason), count in sorted(self.redirect.counts.items()):
                redirects.add_metric([member, reason], count)
            yield redirects
            yield _passed_over(self.redirect.load.passed_over)
            yield _evaluations(self.holder.evaluations)
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
        heartbeat_age = self.holder.heartbeat_age()
        if view is not None and heartbeat_age is not None:
            heartbeat.add_metric([], heartbeat_age)
        yield fallback
        yield outage
        yield heartbeat
        yield _effective_weights(view)
        store_up = GaugeMetricFamily(
            "fedredirect_router_store_up", "1 if the last read of the store succeeded"
        )
        store_up.add_metric([], 0.0 if self.holder.sync_error else 1.0)
        yield store_up
        yield from _launch_counts(self.holder.launches)


_EVALUATIONS_HELP = "evaluations of the federation's view by this router, each on a change"
_PASSED_OVER_HELP = (
    "launches a member was passed over for, past its bound of this router's recent launches "
    "(load_balancer: bounded)"
)


def _launch_counts(launches: LaunchCounts) -> Iterator[Metric]:
    routers = GaugeMetricFamily(
        "fedredirect_router_routers",
        "routers sharing the federation's launches (this one included), as this router "
        "counts them: it takes each to have sent a member as many launches as itself",
    )
    routers.add_metric([], launches.routers)
    yield routers
    since = GaugeMetricFamily(
        "fedredirect_router_launches_since_report",
        "launches this router sent a member that reports a quota since that member's last "
        "/health report (0 again with each newer report)",
        labels=["member"],
    )
    for member, sent in sorted(launches.members.items()):
        since.add_metric([member], sent.count)
    yield since


def _passed_over(counts: Mapping[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(
        "fedredirect_router_launches_passed_over", _PASSED_OVER_HELP, labels=["member"]
    )
    for member, count in sorted(counts.items()):
        family.add_metric([member], count)
    return family


def _evaluations(count: int) -> CounterMetricFamily:
    family = CounterMetricFamily("fedredirect_router_evaluations", _EVALUATIONS_HELP)
    family.add_metric([], count)
    return family


def _effective_weights(view: View | None) -> GaugeMetricFamily:
    """Each member's weight as this router balances by it: the checker's effective weight,
    less what this router's own launches since the member's report took of its free pods."""
    family = GaugeMetricFamily(
        "fedredirect_member_effective_weight",
        "weight launches are balanced by now in this router's view: weight x capacity share "
        "(its own launches since the member's report counted) x slow-start factor, 0 when "
        "excluded",
        labels=["member"],
    )
    for m in view.members if view is not None else ():
        family.add_metric([m.name], m.effective_weight)
    return family


class SharedRedirectCounts:
    """Copies one worker's redirect, evaluation and passed-over counts into its
    prometheus-client multiprocess file."""

    def __init__(self, redirect: RedirectApp, holder: SnapshotHolder) -> None:
        self.redirect = redirect
        self.holder = holder
        self.counter = PromCounter(
            "fedredirect_redirects",
            "launches redirected to a member, by why that member was chosen",
            ["member", "reason"],
            registry=None,
        )
        self.evaluations = PromCounter(
            "fedredirect_router_evaluations", _EVALUATIONS_HELP, registry=None
        )
        self.passed_over = PromCounter(
            "fedredirect_router_launches_passed_over", _PASSED_OVER_HELP, ["member"], registry=None
        )
        self.shared: dict[tuple[str, str], int] = {}  # what the file holds already
        self.shared_evaluations = 0
        self.shared_passed_over: dict[str, int] = {}

    def share(self) -> None:
        """Add what was counted since the last call to the file (never twice, never lost)."""
        for key, count in self.redirect.counts.items():
            delta = count - self.shared.get(key, 0)
            if delta > 0:
                self.counter.labels(*key).inc(delta)
                self.shared[key] = count
        evaluations = self.holder.evaluations
        if evaluations > self.shared_evaluations:
            self.evaluations.inc(evaluations - self.shared_evaluations)
            self.shared_evaluations = evaluations
        for member, count in list(self.redirect.load.passed_over.items()):
            delta = count - self.shared_passed_over.get(member, 0)
            if delta > 0:
                self.passed_over.labels(member).inc(delta)
                self.shared_passed_over[member] = count

    async def run(self, interval: float = SHARE_INTERVAL) -> None:
        """Forever: share every ``interval`` seconds (and once more when cancelled)."""
        try:
            while True:
                await asyncio.sleep(interval)
                self.share()
        finally:
            self.share()


class RouterMetrics:
    """``/metrics`` of one router process, in either mode (see the module docstring); the
    app routes ``/metrics`` to :meth:`scrape`."""

    def __init__(self, api: FastAPI, holder: SnapshotHolder, redirect: RedirectApp) -> None:
        self.registry = CollectorRegistry()
        Instrumentator(registry=self.registry, excluded_handlers=["/metrics"]).instrument(api)
        multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.shared = SharedRedirectCounts(redirect, holder) if multiprocess else None
        self.collector = RouterCollector(holder, redirect, redirects=not multiprocess)
        if not multiprocess:
            self.registry.register(self.collector)

    def exposition(self) -> bytes:
        """The text a scrape gets: every worker's counters when they share files."""
        if self.shared is None:
            return generate_latest(self.registry)
        self.shared.share()
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(self.collector)
        return generate_latest(registry)

    async def scrape(self) -> Response:
        return Response(self.exposition(), media_type=CONTENT_TYPE_LATEST)
