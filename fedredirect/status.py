"""The terminal table of ``fedredirect status``: the status document (shared/status.py) as
text, with the same banners as ``/status``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.evaluate import View
from shared.humanize import format_age, format_window
from shared.status import LaunchCounts, banners, status_document
from shared.timeline import clock
from shared.weights import weight_summary


def _age(seconds: float | None) -> str:
    return format_age(seconds, missing="-")


def _versions(versions: Mapping[str, str] | None, keys: list[str] | tuple[str, ...]) -> str:
    if not versions:
        return "-"
    shown = keys or tuple(sorted(versions))
    return " ".join(f"{k}={versions.get(k, '?')}" for k in shown)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _member_versions(m: Mapping[str, Any], ref_versions: Mapping[str, str] | None) -> str:
    if m["version_differences"] and ref_versions:
        shown = " ".join(
            f"{k}={(m['versions'] or {}).get(k, '?')} (ref {ref_versions.get(k)})"
            for k in m["version_differences"]
            if k != "*"
        )
        return shown or "not observed recently"
    compatible = m.get("compatible_versions") or {}
    if compatible:  # differs from the reference, within the level versions.compatible allows
        return " ".join(
            f"{k}={c['version']} (compatible with ref {c['reference']}, {c['compatible']})"
            for k, c in compatible.items()
        )
    return "= reference" if m["versions"] and ref_versions else _versions(m["versions"], ())


def _launches(outcomes: Mapping[str, Any] | None) -> str:
    """Failed of launched in the window, as the member's metrics count them."""
    if outcomes is None:
        return "-"
    failed, launched = outcomes["failures"], outcomes["launches"]
    return f"{failed}/{launched} failed in {outcomes['window_seconds']:.0f}s"


def _recent(recent: Mapping[str, Any]) -> str:
    """Its share of a router's launches in the window (``bounded``), and its bound."""
    share = "-" if recent["share"] is None else f"{recent['share']:.0%}"
    bound = f" <= {recent['bound']}" if recent["bound"] is not None else ""
    passed = f", passed over {recent['passed_over']}" if recent["passed_over"] else ""
    return f"{share} ({recent['launches']}{bound}{passed})"


def _launch_share(share: Mapping[str, Any]) -> str:
    """Its part of every router's launches over the recent window (history's counts)."""
    part = "-" if share["share"] is None else f"{share['share']:.0%}"
    return f"{part} ({share['launches']} in {format_window(share['window_seconds'])})"


def _outcome_notes(name: str, m: Mapping[str, Any]) -> list[str]:
    """When an ejection for failing launches ends, and why the metrics could not be read."""
    outcomes = m["outcomes"] or {}
    notes = []
    if "failing" in m["excluded_by"] and outcomes.get("ejected_until") is not None:
        notes.append(
            f"{name}: ejected until {clock(outcomes['ejected_until'])} "
            f"(ejection {outcomes['ejections']} in a row)"
        )
    if outcomes.get("error"):
        notes.append(f"{name}: metrics not read ({outcomes['error']}): judged without them")
    return notes


def render_status_document(doc: Mapping[str, Any]) -> str:
    """The text of a status document: banners first, then the reference, members, targets."""
    ref = doc["reference"]
    lines = [f"!! {b.title}: {b.reason}" for b in banners(doc)]
    state = "STALE (version gating suspended)" if ref["stale"] else "fresh"
    lines.append(f"reference: {_versions(ref['versions'], ref['compared_keys'])}")
    lines.append(
        f"  policy {ref['policy']}, source {ref['source']}, age {_age(ref['age_seconds'])}, {state}"
    )
    if ref["stale_reason"]:
        lines.append(f"  why stale: {ref['stale_reason']}")
    checker = doc["checker"]
    lines.append(
        f"checker: {checker['checker_id'] or 'none'}, "
        f"heartbeat {_age(checker['heartbeat_age_seconds'])} ago"
    )
    lines.append("")
    rows = [["MEMBER", "STATE", "PODS", "LAUNCHES", "RECORD", "VERSIONS", "WEIGHT", "REASONS"]]
    # a router's document under ``bounded``: each member's part of its recent launches
    recent = any(m.get("recent_launches") for m in doc["members"].values())
    # history read: each member's part of every router's recent launches
    shares = any(m.get("launch_share") for m in doc["members"].values())
    extra = [("RECENT", recent), ("SHARE", shares)]
    rows[0][4:4] = [title for title, shown in extra if shown]
    for name, m in doc["members"].items():
        quota = m["quota"] if m["quota"] is not None else "-"
        row = [
            name + (" (prime)" if m["prime"] else ""),
            m["state"],
            f"{m['total_pods']}/{quota}" if m["total_pods"] is not None else "-",
            _launches(m["outcomes"]),
            _age(m["record_age_seconds"]),
            _member_versions(m, ref["versions"]),
            weight_summary(m["weight"], m["effective_weight"], m["weight_reasons"]),
            "; ".join(m["reasons"]) or "-",
        ]
        cells = [
            (_recent(m["recent_launches"]) if m.get("recent_launches") else "-", recent),
            (_launch_share(m["launch_share"]) if m.get("launch_share") else "-", shares),
        ]
        row[4:4] = [cell for cell, shown in cells if shown]
        rows.append(row)
    lines.extend(_table(rows))
    for name, m in doc["members"].items():
        for endpoint in ("health", "versions"):
            answered = m.get(endpoint + "_url")
            if answered not in (None, f"{m['url']}/{endpoint}"):
                lines.append(f"{name}: /{endpoint} redirects to {answered}")
        lines.extend(_outcome_notes(name, m))
    lines.append("")
    lines.append(f"launches go to: {', '.join(doc['targets']) or 'nobody'}")
    return "\n".join(lines)


def render_status(view: View, launches: LaunchCounts | None = None) -> str:
    """``fedredirect status``: the view as every router would show it, with every router's
    recent ``launches`` when history was read."""
    return render_status_document(status_document(view, launches=launches))
