"""Explaining one routing decision: every candidate, why it is in or out, scores, the pick;
with ``bounded``, the repository's order walked against the router's recent launches."""

from __future__ import annotations

from typing import Any

from shared.balance import Target, cache_key, rendezvous_score
from shared.bounded import (
    Launches,
    RecentLaunches,
    bound,
    first_within_bound,
    member_loads,
    rendezvous_order,
    with_limits,
)
from shared.evaluate import View
from shared.status import compatible_note, compatible_versions_json
from shared.weights import weight_reasons


def explain(
    view: View,
    path: str,
    sticky_url: str | None = None,
    u: float = 0.0,
    launches: Launches | None = None,
) -> dict[str, Any]:
    """The decision ``view.pick(path, sticky_url, u, launches)`` makes, with its reasons,
    as JSON; ``launches``: the router's recent launches (``bounded``)."""
    key = cache_key(path)
    candidates = _candidates(view, key, _recent(view, launches))
    decision = view.pick(path, sticky_url, u, launches)
    sticky = None
    if sticky_url is not None:
        sticky = {"cookie": sticky_url, "honoured": decision.reason == "cookie"}
    return {
        "path": path,
        "cache_key": key,
        "load_balancer": view.config.load_balancer,
        "fallback_active": view.fallback_active,
        "fallback_reason": view.fallback_reason,
        "version_gate_suspended": view.gate_suspended,
        "version_gate_reason": view.gate_reason,
        "reference": {
            "versions": view.reference.versions,
            "source": view.reference.source,
            "stale": view.reference.stale,
        },
        "sticky": sticky,
        "candidates": candidates,
        "bounded": bounded_json(view, key, launches, decision.reason != "cookie")
        if view.config.load_balancer == "bounded"
        else None,
        "pick": {"member": decision.member, "url": decision.url, "reason": decision.reason},
    }


def _recent(view: View, launches: Launches | None) -> RecentLaunches | None:
    """The router's recent launches as the weights' words read them (``bounded``; the
    launches passed over are the status page's to count)."""
    if view.config.load_balancer != "bounded" or launches is None:
        return None
    loads = member_loads(view.targets, view.config.bounded_load.factor, launches)
    return RecentLaunches(view.config.bounded_load.window, launches.total, loads, {})


def _candidates(view: View, key: str, recent: RecentLaunches | None) -> list[dict[str, Any]]:
    """Every member, in the targets or not and why, with its rendezvous score for ``key``
    and why its weight is what it is: those in first, the highest score first."""
    targets = {t.name: t for t in view.targets}
    rendezvous = view.config.load_balancer in ("rendezvous", "bounded")
    candidates: list[dict[str, Any]] = []
    for m in view.members:
        target = targets.get(m.name)
        weight = target.weight if target else m.weight
        in_ = target is not None
        compatible = compatible_versions_json(view, m)
        if in_:
            why = "fallback target" if view.fallback_active else "eligible"
            # eligible though its versions differ: say which rule let it in
            why = "; ".join([why, *(compatible_note(k, e) for k, e in compatible.items())])
        else:
            why = "; ".join(m.reasons) or m.state
        # ejected for failing launches: its reason has the numbers, this when it comes back
        ejected = m.outcomes if "failing" in m.excluded_by else None
        candidates.append(
            {
                "member": m.name,
                "url": m.url,
                "state": m.state,
                "in": in_,
                "why": why,
                "compatible_versions": compatible,
                "weight": weight,
                "configured_weight": m.weight,
                "effective_weight": m.effective_weight,
                "weight_reasons": weight_reasons(view, m, recent),
                "score": rendezvous_score(key, Target(m.name, m.url, weight))
                if rendezvous
                else None,
                "ejected_until": ejected.ejected_until if ejected else None,
            }
        )
    candidates.sort(key=lambda c: (not c["in"], -(c["score"] or 0.0), c["member"]))
    return candidates


def bounded_json(view: View, key: str, launches: Launches | None, balanced: bool) -> dict[str, Any]:
    """The repository's order (``bounded``), each member's launches in the router's window
    against its bound, and which the launch passes over (``balanced``: the balancer
    decides, not a cookie): every member before the first below its bound."""
    factor = view.config.bounded_load.factor
    order = with_limits(rendezvous_order(key, view.targets), factor)
    counts, total = (launches.counts, launches.total) if launches else ({}, 0)
    chosen = first_within_bound(order, counts, total) if balanced else None
    return {
        "factor": factor,
        "window_seconds": view.config.bounded_load.window,
        "launches": total,
        "order": [
            {
                "member": member,
                "launches": counts.get(member, 0),
                "bound": bound(limit, total),
                "passed_over": chosen is not None and i < chosen,
            }
            for i, (member, limit) in enumerate(order)
        ],
    }
