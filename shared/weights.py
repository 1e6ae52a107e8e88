"""A member's weight as every page shows it: configured, effective, and why they differ
(its free capacity, its slow start, a fallback or outage set, the load bound), in numbers
for /status.json and in words for /status, /why and ``fedredirect status``.

The words are made from the numbers (:func:`capacity_json`, :func:`slow_start_json`), so
what a page says and what the JSON holds cannot disagree; the renderers only print them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from shared.bounded import RecentLaunches
from shared.capacity import free_pods
from shared.evaluate import MemberView, View
from shared.rules import judged_at
from shared.slowstart import STEPS, ramp_step


def number(value: float) -> str:
    """A weight or a factor for people: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(at))


def capacity_json(m: MemberView, pod_headroom: int | str) -> dict[str, Any] | None:
    """The factor its free pods put on its weight, its free pods (less the headroom and the
    launches sent since its report) and those launches; None when it reports no quota."""
    if m.capacity_share is None or m.total_pods is None or m.quota is None:
        return None
    free = free_pods(m.total_pods, m.quota, pod_headroom, m.pending_launches)
    return {
        "share": m.capacity_share,
        "free_pods": max(0, free),
        "pending_launches": m.pending_launches,
    }


def slow_start_json(m: MemberView, as_of: float, slow_start: float) -> dict[str, Any] | None:
    """Its slow start while it ramps: the factor on its weight, the step reached as of the
    view's judgement, when the ramp started and when it reaches its full weight; else None."""
    if m.ramp is None or m.eligible_since is None:
        return None
    return {
        "factor": m.ramp,
        "step": ramp_step(m.eligible_since, as_of, slow_start),
        "since": m.eligible_since,
        "until": m.eligible_since + slow_start,
    }


def _capacity_words(capacity: dict[str, Any], quota: int) -> str:
    pending, left = capacity["pending_launches"], capacity["free_pods"]
    # The share is the report's (every router's alike); launches since only use up room.
    reported = f"{left + pending} of {quota} pods free at its report" if pending else None
    words = f"capacity: {reported or f'{left} of {quota} pods free'}, x{number(capacity['share'])}"
    return f"{words}; {pending} launches sent since, {left} left" if pending else words


def _slow_start_words(ramp: dict[str, Any]) -> str:
    return (
        f"slow start: step {ramp['step']} of {STEPS}, x{number(ramp['factor'])}, "
        f"full weight at {_clock(ramp['until'])}"
    )


def _set_words(view: View, balanced: float) -> str:
    """Why a fallback or outage set balances by another weight than the effective one."""
    if view.fallback_active:
        return f"fallback '{view.fallback_policy}': balanced by weight {number(balanced)}"
    return f"outage '{view.config.outage.policy}': balanced by weight {number(balanced)}"


def _load_words(name: str, recent: RecentLaunches) -> str | None:
    """Its part of the router's recent launches against its bound (``bounded``), for a
    target: when it is at its bound, launches of its repositories go to the next member."""
    load = recent.loads.get(name)
    if load is None or load.bound is None:
        return None
    words = (
        f"load bound: {load.launches} of {recent.launches} launches in the last "
        f"{number(recent.window)}s, bound {load.bound}"
    )
    if load.launches >= load.bound:
        words += ", reached: its repositories' launches go to their next member"
    passed = recent.passed_over.get(name, 0)
    if passed:
        words += f"; passed over for {passed} launches since the router started"
    return words


def weight_reasons(view: View, m: MemberView, recent: RecentLaunches | None = None) -> list[str]:
    """Why ``m``'s effective weight is what it is, one phrase a reason: excluded, its free
    capacity, its slow start, the fallback or outage set that balances by another weight,
    and with ``recent`` (``bounded``: the router's recent launches) its load bound. Empty:
    it takes launches by its configured weight."""
    reasons = []
    if not m.eligible:
        reasons.append(f"excluded: {m.state}")
    else:
        capacity = capacity_json(m, view.config.pod_headroom)
        if capacity is not None and m.quota is not None:
            reasons.append(_capacity_words(capacity, m.quota))
        as_of = judged_at(view.config, view.heartbeat, view.evaluated_at)
        ramp = slow_start_json(m, as_of, view.config.slow_start)
        if ramp is not None:
            reasons.append(_slow_start_words(ramp))
    target = view.targets_by_url.get(m.url)
    if target is not None and target.weight != m.effective_weight:
        reasons.append(_set_words(view, target.weight))
    load = _load_words(m.name, recent) if recent is not None else None
    if load is not None:
        reasons.append(load)
    return reasons


def weight_summary(weight: float, effective: float, reasons: Sequence[str]) -> str:
    """``50 -> 20 (capacity: ...; slow start: ...)``: the configured and the effective weight,
    and why they differ."""
    why = f" ({'; '.join(reasons)})" if reasons else ""
    return f"{number(weight)} -> {number(effective)}{why}"
