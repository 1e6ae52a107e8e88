"""The terminal table of ``fedredirect status``: the view exactly as routers evaluate it."""

from __future__ import annotations

from shared.evaluate import View
from shared.humanize import format_age


def _age(seconds: float | None) -> str:
    return format_age(seconds, missing="-")


def _versions(versions: dict[str, str] | None, keys: tuple[str, ...]) -> str:
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


def render_status(view: View) -> str:
    ref = view.reference
    lines = []
    state = "STALE (version gating suspended)" if ref.stale else "fresh"
    lines.append(f"reference: {_versions(ref.versions, ref.keys)}")
    lines.append(f"  policy {ref.policy}, source {ref.source}, age {_age(ref.age)}, {state}")
    if ref.stale_reason:
        lines.append(f"  why stale: {ref.stale_reason}")
    hb = view.heartbeat
    lines.append(
        f"checker: {hb.checker_id if hb else 'none'}, heartbeat {_age(view.heartbeat_age)} ago"
    )
    if view.gate_suspended:
        lines.append(f"!! version gate suspended: {view.gate_reason}")
    if view.fallback_active:
        lines.append(f"!! fallback active: {view.fallback_reason}")
    lines.append("")
    rows = [["MEMBER", "STATE", "WEIGHT", "PODS", "RECORD", "VERSIONS", "REASONS"]]
    for m in view.members:
        pods = f"{m.total_pods}/{m.quota if m.quota is not None else '-'}"
        name = m.name + (" (prime)" if m.prime else "")
        if m.version_differences and ref.versions:
            shown = " ".join(
                f"{k}={(m.versions or {}).get(k, '?')} (ref {ref.versions.get(k)})"
                for k in m.version_differences
                if k != "*"
            )
            versions = shown or "not observed recently"
        else:
            versions = "= reference" if m.versions and ref.versions else _versions(m.versions, ())
        rows.append(
            [
                name,
                m.state,
                f"{m.weight:g}",
                pods if m.total_pods is not None else "-",
                _age(m.record_age),
                versions,
                "; ".join(m.reasons) or "-",
            ]
        )
    lines.extend(_table(rows))
    for m in view.members:
        cfg = view.config.members[m.name]
        for endpoint, configured, answered in (
            ("health", cfg.health, m.health_url),
            ("versions", cfg.versions, m.versions_url),
        ):
            if answered != configured:
                lines.append(f"{m.name}: /{endpoint} redirects to {answered}")
    targets = ", ".join(t.name for t in view.targets) or "nobody"
    lines.append("")
    lines.append(f"launches go to: {targets}")
    return "\n".join(lines)
