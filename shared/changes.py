"""What changed between two views: the events that are logged (and alerted on)."""

from __future__ import annotations

from typing import Any

from shared.evaluate import View


def view_changes(old: View | None, new: View) -> list[dict[str, Any]]:
    """One event per member state change and per reference change, with old -> new."""
    events: list[dict[str, Any]] = []
    for member in new.members:
        before = old.member(member.name) if old else None
        if before is None or before.state != member.state:
            events.append(
                {
                    "event": "member_state_changed",
                    "member": member.name,
                    "old": before.state if before else None,
                    "new": member.state,
                    "reasons": list(member.reasons),
                    "excluded_by": list(member.excluded_by),
                }
            )
    ref_old = old.reference if old else None
    ref = new.reference
    if ref_old is None or (ref_old.versions, ref_old.stale) != (ref.versions, ref.stale):
        events.append(
            {
                "event": "reference_changed",
                "old": ref_old.versions if ref_old else None,
                "new": ref.versions,
                "old_stale": ref_old.stale if ref_old else None,
                "stale": ref.stale,
                "source": ref.source,
                "reason": ref.stale_reason,
            }
        )
    reasons = {
        "gate_suspended": new.gate_reason,
        "fallback_active": new.fallback_reason,
        "outage_active": new.outage_reason,
    }
    for flag, reason in reasons.items():
        was, now = (getattr(old, flag) if old else False), getattr(new, flag)
        if was != now:
            events.append({"event": flag, "old": was, "new": now, "reason": reason})
    return events
