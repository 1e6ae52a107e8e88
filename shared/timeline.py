"""The pictures of /status from history: segments that tile a time window, and launch shares.

Pure functions of history events (docs/history.md) and a window: each member's state over
time, the reference version's (fresh or stale, and its versions), version gating, the
drains, and the launches each member received per router. Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: The windows /status offers (``/status?window=6h``), in seconds.
WINDOWS: dict[str, float] = {"1h": 3600.0, "6h": 6 * 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}
DEFAULT_WINDOW = "24h"
#: The state of the lead-in before anything is known (history starts later, or is lost).
NO_HISTORY = "no_history"
#: The event kinds the pictures read (observations are left out).
PICTURED = frozenset(
    {"member_state_changed", "reference_changed", "gate_suspended", "drain", "undrain", "launches"}
)


@dataclass(frozen=True)
class Segment:
    """``state`` (with ``reason``) from ``start`` to ``end`` (UNIX seconds, start < end)."""

    start: float
    end: float
    state: str
    reason: str


def clock(at: float) -> str:
    """A UNIX time for people, in UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def segments(
    changes: Iterable[tuple[float, str, str]],
    start: float,
    end: float,
    known_since: float | None = None,
) -> list[Segment]:
    """The segments that tile [start, end] from ``(at, state, reason)`` changes (any order;
    of changes at the same time the later one wins): the state at ``start`` is the last
    change at or before it; before any change is known, a ``NO_HISTORY`` lead-in that says
    since when history is available (``known_since``, else the first change)."""
    if end <= start:
        return []
    ordered = sorted(changes, key=lambda change: change[0])
    current: tuple[str, str] | None = None
    inside: list[tuple[float, str, str]] = []
    for at, state, reason in ordered:
        if at <= start:
            current = (state, reason)
        elif at < end:
            inside.append((at, state, reason))
    if current is None:
        since = inside[0][0] if inside else known_since
        if since is None or since >= end:
            current = (NO_HISTORY, "no history in this window")
        else:
            current = (NO_HISTORY, f"no history before {clock(max(since, start))}")
    result: list[Segment] = []
    cursor = start
    for at, state, reason in [*inside, (end, "", "")]:
        if at > cursor:
            if result and (result[-1].state, result[-1].reason) == current:
                result[-1] = Segment(result[-1].start, at, *current)
            else:
                result.append(Segment(cursor, at, *current))
            cursor = at
        current = (state, reason)
    return result


def member_changes(
    events: Iterable[Mapping[str, Any]], member: str
) -> list[tuple[float, str, str]]:
    """A member's state changes, each with its reasons."""
    return [
        (float(e["at"]), str(e["new"]), "; ".join(e.get("reasons") or []) or "all checks pass")
        for e in events
        if e["event"] == "member_state_changed" and e.get("member") == member
    ]


def _versions(versions: Mapping[str, str] | None) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted((versions or {}).items())) or "none"


def reference_changes(events: Iterable[Mapping[str, Any]]) -> list[tuple[float, str, str]]:
    """The reference version's changes: ``fresh`` or ``stale``, with its versions."""
    return [
        (
            float(e["at"]),
            "stale" if e.get("stale") else "fresh",
            f"{_versions(e.get('new'))} from {e.get('source')}"
            + (f" (stale: {e.get('reason')})" if e.get("stale") else ""),
        )
        for e in events
        if e["event"] == "reference_changed"
    ]


def gate_changes(events: Iterable[Mapping[str, Any]]) -> list[tuple[float, str, str]]:
    """Version gating: ``suspended`` or ``gating``; never suspended before its first event."""
    return [
        (
            float(e["at"]),
            "suspended" if e.get("new") else "gating",
            str(e.get("reason") or "") if e.get("new") else "versions are compared",
        )
        for e in events
        if e["event"] == "gate_suspended"
    ]


def drain_marks(
    events: Iterable[Mapping[str, Any]], member: str, start: float, end: float
) -> list[dict[str, Any]]:
    """A member's drains and undrains within the window."""
    return [
        {"at": float(e["at"]), "event": e["event"], "reason": e.get("reason") or ""}
        for e in events
        if e["event"] in ("drain", "undrain")
        and e.get("member") == member
        and start <= float(e["at"]) <= end
    ]


def launch_shares(
    events: Iterable[Mapping[str, Any]], start: float, end: float
) -> dict[str, dict[str, int]]:
    """Launches each member received within the window, per router. A router's ``launches``
    events count since it started, so a count is the difference from its previous event
    (or the whole count when the router started within the window)."""
    by_router: dict[str, list[Mapping[str, Any]]] = {}
    for e in events:
        if e["event"] == "launches":
            by_router.setdefault(str(e["router"]), []).append(e)
    shares: dict[str, dict[str, int]] = {}
    for router, kept in sorted(by_router.items()):
        counts: dict[str, int] = {}
        previous: Mapping[str, Any] | None = None
        for e in sorted(kept, key=lambda e: float(e["at"])):
            at = float(e["at"])
            if start < at <= end:
                if previous is not None and previous["started_at"] == e["started_at"]:
                    base: Mapping[str, int] = previous["counts"]
                elif float(e["started_at"]) >= start:
                    base = {}
                else:  # started before the window, and its count then is not known
                    base = {member: count for member, count in e["counts"].items()}
                for member, count in e["counts"].items():
                    counts[member] = counts.get(member, 0) + max(count - base.get(member, 0), 0)
            previous = e
        shares[router] = counts
    return shares


def timeline(
    events: Sequence[Mapping[str, Any]],
    available_since: float | None,
    members: Iterable[str],
    window: str,
    now: float,
) -> dict[str, Any]:
    """Everything the pictures of /status show for ``window`` ending at ``now``; ``events``
    hold what happened in it and, before it, each strip's last change."""
    start, end = now - WINDOWS[window], now

    def tiles(changes: list[tuple[float, str, str]]) -> list[dict[str, Any]]:
        return [asdict(s) for s in segments(changes, start, end, available_since)]

    return {
        "window": window,
        "start": start,
        "end": end,
        "available_since": available_since,
        "error": None,
        "reference": tiles(reference_changes(events)),
        "gate": [
            asdict(s)
            for s in segments(
                [(float("-inf"), "gating", "versions are compared"), *gate_changes(events)],
                start,
                end,
            )
        ],
        "members": {
            name: {
                "segments": tiles(member_changes(events, name)),
                "drains": drain_marks(events, name, start, end),
            }
            for name in members
        },
        "launches": launch_shares(events, start, end),
    }
