"""The status document: one model behind ``/status``, ``/status.json`` and ``fedredirect status``.

The document is the evaluated view as JSON (``view_to_json``) with, on a router, that
router's health and redirect counts. Every renderer reads it, and every renderer takes its
banners from :func:`banners`, so the page, the JSON and the command line cannot disagree
about what is wrong. Ages are measured when the document is made: a view lasts until a
verdict changes, which may be long after it was evaluated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from shared.bounded import RecentLaunches
from shared.evaluate import MemberView, View, age
from shared.records import CheckerHeartbeat, LaunchOutcomes, MemberObservation
from shared.rules import judged_at
from shared.weights import capacity_json, slow_start_json, weight_reasons


class Records(Protocol):
    """The records a view was evaluated from, or later ones that differ only in their times
    (a router's latest snapshot): where the document takes its timestamps from."""

    @property
    def observations(self) -> Mapping[str, MemberObservation]: ...

    @property
    def heartbeat(self) -> CheckerHeartbeat | None: ...


#: The window (of /status's pictures) over which /status.json and ``fedredirect status`` give
#: each member's share of every router's launches: the shortest, so it is recent.
RECENT_WINDOW = "1h"


class LaunchCounts(NamedTuple):
    """The launches each member received over the last ``window`` seconds, every router's
    added up: history's ``launches`` events, which each router writes once a minute from
    counts it keeps anyway (so showing them costs the redirects nothing)."""

    window: float
    counts: Mapping[str, int]


def launch_counts(pictures: Mapping[str, Any] | None) -> LaunchCounts | None:
    """The launches of a timeline document (:func:`shared.timeline.timeline`, what the
    share chart of /status draws per router), added over its routers; None without one."""
    if pictures is None or pictures.get("error") or "launches" not in pictures:
        return None
    counts: Counter[str] = Counter()
    for per_member in pictures["launches"].values():
        counts.update(per_member)
    return LaunchCounts(pictures["end"] - pictures["start"], dict(counts))


def status_document(
    view: View,
    router: Mapping[str, Any] | None = None,
    redirects: Mapping[tuple[str, str], int] | None = None,
    *,
    now: float | None = None,
    records: Records | None = None,
    recent: RecentLaunches | None = None,
    launches: LaunchCounts | None = None,
) -> dict[str, Any]:
    """The view as served at /status.json; ``router`` (its health) and ``redirects`` (its
    launch counts by member and reason) only when a router serves it, ``recent`` (its
    recent launches) when it balances with ``bounded``, ``launches`` (every router's
    recent launches, from history) when they were read. Ages are measured at ``now``
    (default: when the view was evaluated) from the timestamps of ``records`` (default:
    the view's own)."""
    doc = view_to_json(view, now, records, recent, launches)
    if router is not None:
        doc["router"] = dict(router)
        doc["redirects"] = [
            {"member": member, "reason": reason, "count": count}
            for (member, reason), count in sorted((redirects or {}).items())
        ]
    return doc


@dataclass(frozen=True)
class Banner:
    """A condition that changes where launches go or how far to trust what is shown."""

    ident: str  # the HTML id on /status
    title: str
    reason: str


def banners(doc: Mapping[str, Any]) -> list[Banner]:
    """The banners of a status document, most severe first (none when all is well)."""
    outage = doc.get("outage") or {}  # the checker heartbeat is too old: outage.policy applies
    router = doc.get("router") or {}
    fallback, gate, ref = doc["fallback"], doc["version_gate"], doc["reference"]
    store_error = router.get("store_error")
    stale_store = "This router cannot read the store; showing its last view"
    conditions = [
        ("banner-outage", outage.get("active"), "Checker outage", outage.get("reason")),
        ("banner-fallback", fallback["active"], "Fallback active", fallback["reason"]),
        ("banner-gate", gate["suspended"], "Version gating suspended", gate["reason"]),
        ("banner-stale-reference", ref["stale"], "Reference version is stale", ref["stale_reason"]),
        ("banner-store", store_error, stale_store, store_error),
    ]
    return [
        Banner(ident, title, str(reason or "no reason given"))
        for ident, active, title, reason in conditions
        if active
    ]


def _times(
    view: View, records: Records | None
) -> tuple[dict[str, tuple[float | None, float | None, float | None]], CheckerHeartbeat | None]:
    """Each member's (checked, health observed, versions observed) times, and the heartbeat:
    from ``records`` when given, else as the view was evaluated."""
    if records is None:
        times = {m.name: (m.checked_at, m.health_at, m.versions_at) for m in view.members}
        return times, view.heartbeat
    get = records.observations.get
    times = {}
    for m in view.members:
        obs = get(m.name)
        health = obs.health if obs else None
        times[m.name] = (
            obs.checked_at if obs else None,
            health.observed_at if health else None,
            obs.versions_at if obs else None,
        )
    return times, records.heartbeat


def _outcomes(view: View, records: Records | None) -> dict[str, LaunchOutcomes | None]:
    """Each member's launch outcomes: from ``records`` when given (a busy member's counts
    move with every read of its metrics, which changes no verdict, so a router keeps its
    view), else as the view was evaluated."""
    if records is None:
        return {m.name: m.outcomes for m in view.members}
    get = records.observations.get
    return {m.name: obs.outcomes if (obs := get(m.name)) else None for m in view.members}


def outcomes_json(outcomes: LaunchOutcomes | None, now: float) -> dict[str, Any] | None:
    """A member's launch outcomes in the status document (None: its metrics are not read)."""
    if outcomes is None:
        return None
    return {
        "launches": outcomes.launches,
        "failures": outcomes.failures,
        "failure_ratio": outcomes.failure_ratio,
        "window_seconds": outcomes.window,
        "age_seconds": age(now, outcomes.observed_at),
        "ejected_until": outcomes.ejected_until,
        "ejections": outcomes.ejections,
        "error": outcomes.error,
    }


def reference_observed_at(view: View, records: Records | None) -> float | None:
    """When the reference was observed: from the latest versions of the members that set
    it when ``records`` are given (a view kept while they are refreshed), else as the view
    was evaluated."""
    ref = view.reference
    if records is None or not ref.members:
        return ref.observed_at
    get = records.observations.get
    observed = [obs.versions_at if (obs := get(name)) else None for name in ref.members]
    if None in observed:
        return ref.observed_at
    return min(t for t in observed if t is not None)


def view_to_json(
    view: View,
    now: float | None = None,
    records: Records | None = None,
    recent: RecentLaunches | None = None,
    launches: LaunchCounts | None = None,
) -> dict[str, Any]:
    """The view as served at /status.json and printed by ``fedredirect status``, its ages
    measured at ``now`` (see :func:`status_document`)."""
    now = view.evaluated_at if now is None else now
    ref = view.reference
    times, heartbeat = _times(view, records)
    outcomes = _outcomes(view, records)
    ref_at = reference_observed_at(view, records)
    as_of = judged_at(view.config, view.heartbeat, view.evaluated_at)
    return {
        "evaluated_at": view.evaluated_at,
        "reference": {
            "policy": ref.policy,
            "versions": ref.versions,
            "compared_keys": list(ref.keys),
            "source": ref.source,
            "observed_at": ref_at,
            "age_seconds": age(now, ref_at),
            "max_age_seconds": view.config.versions_max_age,
            "stale": ref.stale,
            "stale_reason": ref.stale_reason,
        },
        "version_gate": {"suspended": view.gate_suspended, "reason": view.gate_reason},
        "fallback": {
            "policy": view.fallback_policy,
            "active": view.fallback_active,
            "reason": view.fallback_reason,
        },
        "outage": {
            "policy": view.config.outage.policy,
            "max_staleness_seconds": view.config.max_staleness,
            "active": view.outage_active,
            "reason": view.outage_reason,
        },
        "targets": [t.name for t in view.targets],
        "checker": {
            "checker_id": heartbeat.checker_id if heartbeat else None,
            "heartbeat_age_seconds": age(now, heartbeat.at if heartbeat else None),
        },
        "members": {
            m.name: {
                **_member_json(
                    m, times[m.name], now, compatible_versions_json(view, m), outcomes[m.name]
                ),
                "capacity": capacity_json(m, view.config.pod_headroom),
                "slow_start": slow_start_json(m, as_of, view.config.slow_start),
                "weight_reasons": weight_reasons(view, m, recent),
                "recent_launches": recent_launches_json(m.name, recent),
                "launch_share": launch_share_json(m.name, launches),
            }
            for m in view.members
        },
    }


def launch_share_json(member: str, launches: LaunchCounts | None) -> dict[str, Any] | None:
    """A member's part of every router's recent launches (None: history not read)."""
    if launches is None:
        return None
    total = sum(launches.counts.values())
    count = launches.counts.get(member, 0)
    return {
        "launches": count,
        "share": count / total if total else None,
        "window_seconds": launches.window,
    }


def recent_launches_json(member: str, recent: RecentLaunches | None) -> dict[str, Any] | None:
    """A member's part of the router's recent launches (None: not balanced by ``bounded``,
    or not a router's document)."""
    if recent is None:
        return None
    load = recent.loads.get(member)
    return {
        "launches": load.launches if load else 0,
        "share": load.share if load else (0.0 if recent.launches else None),
        "weighted_share": load.weighted_share if load else None,
        "bound": load.bound if load else None,
        "passed_over": recent.passed_over.get(member, 0),
        "window_seconds": recent.window,
    }


def compatible_versions_json(view: View, m: MemberView) -> dict[str, dict[str, str]]:
    """Each key on which ``m`` runs another version than the reference, but one that
    ``versions.compatible`` allows: ``{key: {"version", "reference", "compatible"}}``."""
    versions, reference = m.versions or {}, view.reference.versions or {}
    levels = view.config.versions.compatible
    return {
        key: {"version": versions[key], "reference": reference[key], "compatible": levels[key]}
        for key in m.compatible_versions
    }


def compatible_note(key: str, entry: Mapping[str, str]) -> str:
    """How /why and /status say it: "binderhub 1.0.1 compatible with the reference (minor)"."""
    return f"{key} {entry['version']} compatible with the reference ({entry['compatible']})"


def _member_json(
    m: MemberView,
    times: tuple[float | None, float | None, float | None],
    now: float,
    compatible: dict[str, dict[str, str]],
    outcomes: LaunchOutcomes | None,
) -> dict[str, Any]:
    """One member of the status document; ``times``: see :func:`_times`; ``compatible``:
    see :func:`compatible_versions_json`."""
    checked_at, health_at, versions_at = times
    return {
        "url": m.url,
        "weight": m.weight,
        "effective_weight": m.effective_weight,
        "prime": m.prime,
        "state": m.state,
        "eligible": m.eligible,
        "reasons": list(m.reasons),
        "excluded_by": list(m.excluded_by),
        "versions": m.versions,
        "version_differences": list(m.version_differences),
        "compatible_versions": compatible,
        "total_pods": m.total_pods,
        "quota": m.quota,
        "record_age_seconds": age(now, checked_at),
        "health_age_seconds": age(now, health_at),
        "versions_age_seconds": age(now, versions_at),
        "last_error": m.last_error,
        "health_url": m.health_url,
        "versions_url": m.versions_url,
        "outcomes": outcomes_json(outcomes, now),
    }
