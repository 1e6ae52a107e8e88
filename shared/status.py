"""The status document: one model behind ``/status``, ``/status.json`` and ``fedredirect status``.

The document is the evaluated view as JSON (``view_to_json``) with, on a router, that
router's health and redirect counts. Every renderer reads it, and every renderer takes its
banners from :func:`banners`, so the page, the JSON and the command line cannot disagree
about what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.evaluate import View


def status_document(
    view: View,
    router: Mapping[str, Any] | None = None,
    redirects: Mapping[tuple[str, str], int] | None = None,
) -> dict[str, Any]:
    """The view as served at /status.json; ``router`` (its health) and ``redirects`` (its
    launch counts by member and reason) only when a router serves it."""
    doc = view_to_json(view)
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
    conditions = [
        ("banner-outage", outage.get("active"), "Checker outage", outage.get("reason")),
        (
            "banner-fallback",
            doc["fallback"]["active"],
            "Fallback active",
            doc["fallback"]["reason"],
        ),
        (
            "banner-gate",
            doc["version_gate"]["suspended"],
            "Version gating suspended",
            doc["version_gate"]["reason"],
        ),
        (
            "banner-stale-reference",
            doc["reference"]["stale"],
            "Reference version is stale",
            doc["reference"]["stale_reason"],
        ),
        (
            "banner-store",
            router.get("store_error"),
            "This router cannot read the store; showing its last view",
            router.get("store_error"),
        ),
    ]
    return [
        Banner(ident, title, str(reason or "no reason given"))
        for ident, active, title, reason in conditions
        if active
    ]


def view_to_json(view: View) -> dict[str, Any]:
    """The view as served at /status.json and printed by ``fedredirect status``."""
    ref = view.reference
    return {
        "evaluated_at": view.evaluated_at,
        "reference": {
            "policy": ref.policy,
            "versions": ref.versions,
            "compared_keys": list(ref.keys),
            "source": ref.source,
            "observed_at": ref.observed_at,
            "age_seconds": ref.age,
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
            "checker_id": view.heartbeat.checker_id if view.heartbeat else None,
            "heartbeat_age_seconds": view.heartbeat_age,
        },
        "members": {
            m.name: {
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
                "total_pods": m.total_pods,
                "quota": m.quota,
                "record_age_seconds": m.record_age,
                "health_age_seconds": m.health_age,
                "versions_age_seconds": m.versions_age,
                "last_error": m.last_error,
                "health_url": m.health_url,
                "versions_url": m.versions_url,
            }
            for m in view.members
        },
    }
