"""The alerts of deploy/prometheus/alerts.yml that a replay evaluates, in Python.

Each replayed alert's expression is a named function of one evaluation (what the checker
exported, the launches the routers redirected); its ``for:`` comes from the rule file
(:func:`alert_durations`), the one place it is written. tests/unit/test_replay_alerts.py
runs the real rules in promtool on a replay's series and checks both agree, to the minute.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from shared.config import FederationConfig
from shared.records import LaunchOutcomes

EVAL_INTERVAL = 60.0  # Prometheus' evaluation interval; also replay's longest step
#: The alerts about the machinery itself: replay assumes the checker published at every
#: step and the routers served, so these never fire in a replay.
NOT_REPLAYED: dict[str, str] = {
    "FedredirectCheckerHeartbeatStale": "replay assumes the checker published at every step",
    "FedredirectCheckerDown": "about scraping the checker, not in history",
    "FedredirectCheckerReplicaDown": "about scraping the checker, not in history",
    "FedredirectRouterViewStale": "about a router's reads of Redis, not in history",
    "FedredirectRouterDown": "about scraping the routers, not in history",
}


class Exported(Protocol):
    """What the checker exported at one moment (a frame of :mod:`shared.replay`)."""

    @property
    def states(self) -> Mapping[str, str]: ...
    @property
    def fallback(self) -> bool: ...
    @property
    def reference_stale(self) -> bool: ...
    @property
    def outcomes(self) -> Mapping[str, LaunchOutcomes]: ...
    @property
    def effective_weights(self) -> Mapping[str, float]: ...


class Timeline(Protocol):
    """A replay timeline (:class:`shared.replay.Timeline`) as the alerts read it."""

    @property
    def config(self) -> FederationConfig: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    def frame_at(self, t: float) -> Exported: ...


_STARVED_WINDOW = 600.0  # increase(fedredirect_redirects_total[10m])
_CONCENTRATED_WINDOW = 300.0  # rate(fedredirect_redirects_total[5m])
_FAILING_RATIO = 0.25  # fedredirect_member_launch_failure_ratio > 0.25
_FAILING_LAUNCHES = 10  # fedredirect_member_launches_in_window >= 10
#: fedredirect_member_state{state=~"stale|unreachable|unhealthy"}: not drained (deliberate),
#: full (capacity), failing or version_mismatch (alerts of their own).
_EXCLUDED_STATES = frozenset({"stale", "unreachable", "unhealthy"})
#: The alert on launch outcomes: replayed only from a history whose records hold them.
LAUNCHES_FAILING = "FedredirectMemberLaunchesFailing"
_PROMETHEUS_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def alert_durations(rules: Mapping[str, Any]) -> dict[str, float]:
    """Every alert of a Prometheus rule document (deploy/prometheus/alerts.yml, loaded) and
    its ``for:`` in seconds: the one place replay learns how long a condition must hold."""
    durations: dict[str, float] = {}
    for group in rules.get("groups", ()):
        for rule in group.get("rules", ()):
            if "alert" in rule:
                parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", str(rule.get("for", "0s")))
                durations[rule["alert"]] = math.fsum(
                    float(n) * _PROMETHEUS_UNITS[u] for n, u in parts
                )
    return durations


@dataclass(frozen=True)
class Evaluation:
    """What the replayed alerts read at one evaluation: the checker's view as exported
    (the frame) and the launches the routers had redirected by then."""

    at: float
    frame: Exported
    redirected: Sequence[str]  # every redirected launch's member, in time order
    times: Sequence[float]  # when each was redirected
    upto: int  # how many of them were redirected by ``at``
    weights: Mapping[str, float]  # member -> its configured weight

    def redirected_within(self, window: float) -> Sequence[str]:
        """The redirects ``increase(...[window])`` counts: those in (at - window, at]."""
        return self.redirected[bisect_right(self.times, self.at - window, 0, self.upto) : self.upto]

    def weight_share(self) -> dict[str, float]:
        """Each member's share of the effective weights, or of the configured ones while no
        member has an effective weight above 0 (nobody eligible: the fallback keeps them)."""
        effective = self.frame.effective_weights
        weights = effective if math.fsum(effective.values()) > 0 else self.weights
        total = math.fsum(weights.values())
        return {name: w / total if total else 1.0 for name, w in weights.items()}


def _no_eligible(e: Evaluation) -> set[str | None]:  # fedredirect_eligible_members == 0
    return set() if "eligible" in e.frame.states.values() else {None}


def _reference_stale(e: Evaluation) -> set[str | None]:
    return {None} if e.frame.reference_stale else set()


def _fallback_active(e: Evaluation) -> set[str | None]:
    return {None} if e.frame.fallback else set()


def _version_mismatch(e: Evaluation) -> set[str | None]:
    return {name for name, state in e.frame.states.items() if state == "version_mismatch"}


def _should_get_launches(e: Evaluation, name: str) -> bool:
    """Eligible with an effective weight above 0, or kept out by its version alone with a
    configured weight above 0."""
    if e.frame.effective_weights.get(name, 0.0) > 0:
        return True
    return e.frame.states.get(name) == "version_mismatch" and e.weights.get(name, 0.0) > 0


def _starved(e: Evaluation) -> set[str | None]:
    """Should be getting launches, yet no redirect in 10 minutes while others got some."""
    recent = set(e.redirected_within(_STARVED_WINDOW))
    if not recent:
        return set()
    return {n for n in e.frame.states if _should_get_launches(e, n) and n not in recent}


def _concentrated(e: Evaluation) -> set[str | None]:
    """Over 90 % of the last 5 minutes' redirects, with under 90 % of the effective weight
    (:meth:`Evaluation.weight_share`)."""
    recent = Counter(e.redirected_within(_CONCENTRATED_WINDOW))
    total = recent.total()
    share = e.weight_share() if recent else {}
    return {n for n, c in recent.items() if c / total > 0.9 and share.get(n, 1.0) < 0.9}


def _excluded(e: Evaluation) -> set[str | None]:
    """Configured to take launches (weight above 0), yet stale, unreachable or unhealthy:
    out for a reason nobody chose, which no other alert sees while the others serve."""
    return {
        name
        for name, state in e.frame.states.items()
        if state in _EXCLUDED_STATES and e.weights.get(name, 0.0) > 0
    }


def _launches_failing(e: Evaluation) -> set[str | None]:
    """More than a quarter of at least 10 launches in the checker's window failed, as the
    member's latest record counted them (no ratio without launches: no series)."""
    return {
        name
        for name, o in e.frame.outcomes.items()
        if o.launches >= _FAILING_LAUNCHES and (o.failure_ratio or 0.0) > _FAILING_RATIO
    }


#: The alerts replay evaluates: each one's expression in deploy/prometheus/alerts.yml as a
#: function of one evaluation, giving the members (None: the federation) it holds for.
#: tests/unit/test_replay_alerts.py checks every one against promtool on the real rules.
REPLAYED: dict[str, Callable[[Evaluation], set[str | None]]] = {
    "FedredirectNoEligibleMembers": _no_eligible,
    "FedredirectReferenceStale": _reference_stale,
    "FedredirectVersionMismatchExcluded": _version_mismatch,
    "FedredirectMemberStarved": _starved,
    "FedredirectTrafficConcentrated": _concentrated,
    "FedredirectMemberExcluded": _excluded,
    "FedredirectFallbackActive": _fallback_active,
    LAUNCHES_FAILING: _launches_failing,
}


@dataclass(frozen=True)
class Firing:
    alert: str
    member: str | None
    fired_at: float
    resolved_at: float | None  # None: still firing at the end of the history

    def to_json(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "member": self.member,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
        }


def evaluations(
    timeline: Timeline, picks: Sequence[tuple[float, str | None]]
) -> Iterator[Evaluation]:
    """One evaluation a minute along the timeline, as Prometheus would make them."""
    weights = {name: m.weight for name, m in timeline.config.members.items()}
    served = [(t, m) for t, m in picks if m is not None]
    times, members = [t for t, _ in served], [m for _, m in served]
    for step in range(int((timeline.end - timeline.start) // EVAL_INTERVAL) + 1):
        at = timeline.start + step * EVAL_INTERVAL
        upto = bisect_right(times, at)
        yield Evaluation(at, timeline.frame_at(at), members, times, upto, weights)


def alerts(
    timeline: Timeline, picks: Sequence[tuple[float, str | None]], alert_for: Mapping[str, float]
) -> list[Firing]:
    """The replayed alerts that ``alert_for`` gives a ``for:`` (seconds), evaluated every
    minute on the timeline as the checker and routers would have exported it: each fires
    once its condition has held for its ``for:``, and resolves at the first evaluation
    where the condition is false."""
    conditions = {name: holds for name, holds in REPLAYED.items() if name in alert_for}
    pending: dict[tuple[str, str | None], float] = {}  # condition -> true since
    firing: dict[tuple[str, str | None], Firing] = {}
    done: list[Firing] = []
    for e in evaluations(timeline, picks):
        active = {(name, label) for name, holds in conditions.items() for label in holds(e)}
        for key in [key for key in pending if key not in active]:
            del pending[key]
            if key in firing:
                done.append(replace(firing.pop(key), resolved_at=e.at))
        for key in active:
            since = pending.setdefault(key, e.at)
            if key not in firing and e.at - since >= alert_for[key[0]]:
                firing[key] = Firing(key[0], key[1], e.at, None)
    done += firing.values()
    return sorted(done, key=lambda f: (f.fired_at, f.alert, f.member or ""))


def not_replayed(alert_for: Mapping[str, float], outcomes_recorded: bool) -> dict[str, str]:
    """The alerts a replay leaves out, and why: ``outcomes_recorded`` says whether the
    history's records hold any launch outcomes."""
    missing = {
        name: "no for: read from the alert rules" for name in REPLAYED if name not in alert_for
    }
    if not outcomes_recorded:
        missing.setdefault(LAUNCHES_FAILING, "no launch outcomes in this history's records")
    return NOT_REPLAYED | missing
