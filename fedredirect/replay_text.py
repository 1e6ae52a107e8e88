"""The replay report (:func:`shared.replay.replay`) as text: what happened | what would have."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

Column = Mapping[str, Any]


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(at))


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}m" if hours else f"{rest}m"


def render(report: Mapping[str, Any]) -> str:
    """The report side by side: what happened | what would have happened; how each
    balancer placed the launches when either is not ``rendezvous``."""
    recorded, replayed = report.get("recorded"), report["replayed"]
    balancers = _balancers(report)
    return "\n".join(
        [
            *_header(report, balancers),
            "",
            *_times(recorded, replayed),
            "",
            *_shares(recorded, replayed),
            "",
            *([*_balance(recorded, replayed), ""] if balancers else []),
            *_alerts(recorded, replayed),
            f"not replayed: {', '.join(report['alerts_not_replayed'])}",
        ]
    )


def _balancer(cfg: Column) -> str:
    """``, balancer bounded (factor 1.25, window 60s)``, or the balancer's name alone."""
    bounded = cfg.get("bounded_load")
    if not bounded:
        return f", balancer {cfg['load_balancer']}"
    return f", balancer bounded (factor {bounded['factor']:g}, window {bounded['window']:g}s)"


def _balancers(report: Mapping[str, Any]) -> bool:
    """Whether either column balances otherwise than by ``rendezvous`` (the default)."""
    configs = [report["config"], report.get("recorded_config") or {}]
    return any(c.get("load_balancer", "rendezvous") != "rendezvous" for c in configs)


def _header(report: Mapping[str, Any], balancers: bool) -> list[str]:
    cfg = report["config"]
    happened = " (none: no config event in this history)"
    if report.get("recorded"):
        recorded = report["recorded_config"]
        balancer = _balancer(recorded) if balancers else ""
        happened = (
            f" (reference {recorded['reference_policy']}, "
            f"fallback {recorded['fallback']}{balancer})"
        )
    under = "recorded config" if cfg["from"] == "history" else f"config of {cfg['from']}"
    return [
        f"history {_clock(report['from'])} .. {_clock(report['to'])} UTC "
        f"({_minutes(report['to'] - report['from'])})",
        "happened: recorded transitions" + happened,
        f"would have: replayed under the {under} "
        f"(reference {cfg['reference_policy']}, fallback {cfg['fallback']}"
        f"{_balancer(cfg) if balancers else ''})",
    ]


def _times(recorded: Column | None, replayed: Column) -> list[str]:
    """How long each member was eligible, and the federation-wide spells."""
    rows = [(f"{name} eligible", "eligible_seconds", name) for name in replayed["eligible_seconds"]]
    rows += [
        ("nobody eligible", "nobody_eligible_seconds", None),
        ("fallback active", "fallback_seconds", None),
        ("version mismatch (members)", "version_mismatch_seconds", None),
        ("failing (members)", "failing_seconds", None),
        ("reference stale", "reference_stale_seconds", None),
    ]

    def value(col: Column | None, key: str, member: str | None) -> str:
        if col is None:
            return "-"
        return _minutes(col[key][member] if member else col[key])

    lines = [f"{'':28}{'happened':>12}{'would have':>12}"]
    for label, key, member in rows:
        lines.append(
            f"{label:28}{value(recorded, key, member):>12}{value(replayed, key, member):>12}"
        )
    return lines


def _share(bucket: Column | None) -> str:
    if bucket is None or not bucket["total"]:
        return "-"
    counts = sorted(bucket["counts"].items())
    return " ".join(f"{m} {100 * n / bucket['total']:.0f}%" for m, n in counts if n)


def _shares(recorded: Column | None, replayed: Column) -> list[str]:
    """Each member's share of the synthetic launches per bucket, and the counted ones."""
    would = replayed["launches"]["buckets"]
    happened = recorded["launches"]["buckets"] if recorded else [None] * len(would)
    per_minute = replayed["launches"]["per_minute"]
    lines = [f"share of launches ({per_minute:g} a minute, uniform), happened | would have:"]
    for before, after in zip(happened, would, strict=False):
        lines.append(f"  {_clock(after['from'])[11:]}  {_share(before):40} | {_share(after)}")
    if recorded and "counted_launches" in recorded:
        lines += ["", "launches the routers counted (happened):"]
        for b in recorded["counted_launches"]:
            lines.append(f"  {_clock(b['from'])[11:]}  {_share(b)} ({b['total']} launches)")
    return lines


def _balance(recorded: Column | None, replayed: Column) -> list[str]:
    """How the balancer placed the synthetic launches: how closely each repository kept
    one member, and the highest load against a member's weighted share in a window."""

    def affinity(col: Column | None) -> str:
        value = col["launches"].get("affinity") if col else None
        return "-" if value is None else f"{value:.2f}"

    def peak(col: Column | None) -> str:
        launches = col["launches"] if col else {}
        ratio = launches.get("peak_load_ratio")
        return "-" if ratio is None else f"{ratio:.2f} ({launches['peak_load_member']})"

    window = replayed["launches"]["peak_load_window_seconds"]
    return [
        f"{'balancing (synthetic launches)':36}{'happened':>16}{'would have':>16}",
        f"{'repository on its usual member':36}{affinity(recorded):>16}{affinity(replayed):>16}",
        f"{f'peak load / weighted share ({window:g}s)':36}{peak(recorded):>16}{peak(replayed):>16}",
    ]


def _firings(col: Column | None) -> list[str]:
    if col is None:
        return []
    return [
        f"{_clock(f['fired_at'])[11:]}-"
        + (_clock(f["resolved_at"])[11:] if f["resolved_at"] else "end  ")
        + f" {f['alert'].removeprefix('Fedredirect')}"
        + (f"{{{f['member']}}}" if f["member"] else "")
        for f in col["alerts"]
    ]


def _alerts(recorded: Column | None, replayed: Column) -> list[str]:
    lines = ["alerts (deploy/prometheus/alerts.yml), happened | would have:"]
    left, right = _firings(recorded), _firings(replayed)
    for i in range(max(len(left), len(right), 1)):
        a = left[i] if i < len(left) else ("none" if i == 0 else "")
        b = right[i] if i < len(right) else ("none" if i == 0 else "")
        lines.append(f"  {a:52} | {b}".rstrip())
    return lines
