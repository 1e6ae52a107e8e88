"""History events as the checker writes them, for tests of what reads history back."""

from __future__ import annotations

from typing import Any


def state_changed(
    member: str, at: float, old: str | None, new: str, *reasons: str
) -> dict[str, Any]:
    return {
        "event": "member_state_changed",
        "member": member,
        "at": at,
        "old": old,
        "new": new,
        "reasons": list(reasons),
    }


def reference_changed(
    at: float,
    old: dict[str, str] | None,
    new: dict[str, str],
    source: str,
    *,
    stale: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    """The reference moved from ``old`` (None: there was none) to ``new``."""
    return {
        "event": "reference_changed",
        "at": at,
        "old": old,
        "new": new,
        "old_stale": None if old is None else False,
        "stale": stale,
        "source": source,
        "reason": reason,
    }


def gate_suspended(at: float, reason: str) -> dict[str, Any]:
    return {"event": "gate_suspended", "at": at, "old": False, "new": True, "reason": reason}
