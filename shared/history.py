"""History: the transitions and observations worth keeping, as plain JSON events.

Pure functions: which events one evaluation adds (every transition of a member's state or
reasons, of the reference, of version gating, fallback and outage), the compact form of an
observation kept at a bounded rate, and filtering what was read back. The store adapter
keeps them in a capped Redis stream; nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from shared.changes import view_changes
from shared.config import FederationConfig, config_to_json
from shared.evaluate import View
from shared.records import MemberObservation

#: Event kinds, in the order they are documented (docs/history.md).
KINDS = (
    "member_state_changed",
    "reference_changed",
    "gate_suspended",
    "fallback_active",
    "outage_active",
    "drain",
    "undrain",
    "observation",
    "launches",
    "config",
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
#: What ``since`` may be: a duration (6h, 1h30m) or a UNIX time.
SINCE_PATTERN = r"^(?:(?:\d+(?:\.\d+)?[smhdw])+|\d+(?:\.\d+)?)$"
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def transitions(old: View | None, new: View) -> list[dict[str, Any]]:
    """The events from ``old`` to ``new``: the logged changes (states, reference, gate,
    fallback, outage), plus a member excluded by other rules within the same state (full,
    then also mismatched), each stamped with the evaluation time.

    A reason whose wording alone changed (a full member's pod count, a stale record's age)
    is no transition: it would add an event every period for as long as the state lasts,
    and the observations kept every ``observation_interval`` carry those numbers."""
    events = view_changes(old, new)
    changed = {e["member"] for e in events if e["event"] == "member_state_changed"}
    for member in new.members:
        before = old.member(member.name) if old else None
        if (
            before is not None
            and member.name not in changed
            and before.excluded_by != member.excluded_by
        ):
            events.append(
                {
                    "event": "member_state_changed",
                    "member": member.name,
                    "old": before.state,
                    "new": member.state,
                    "reasons": list(member.reasons),
                    "excluded_by": list(member.excluded_by),
                }
            )
    return [{**event, "at": new.evaluated_at} for event in events]


def outage_events(
    last_heartbeat_at: float | None, now: float, config: FederationConfig
) -> list[dict[str, Any]]:
    """The outage the routers went through while no heartbeat was written, found by the
    writer that writes the next one: Redis was gone or no checker held the lease, so
    nobody could record it as it began. The routers applied ``outage.policy`` from the
    moment the last heartbeat was ``max_staleness`` old until now."""
    if last_heartbeat_at is None:
        return []
    began = last_heartbeat_at + config.max_staleness
    if now <= began:
        return []
    silent = now - last_heartbeat_at
    reason = (
        f"no checker heartbeat for {silent:.0f}s (max {config.max_staleness:.0f}s): "
        f"the routers applied outage policy {config.outage.policy!r}"
    )
    return [
        {"event": "outage_active", "old": False, "new": True, "reason": reason, "at": began},
        {"event": "outage_active", "old": True, "new": False, "reason": None, "at": now},
    ]


#: Record fields history leaves out: what the status page shows but no rule reads.
_NOT_KEPT = frozenset({"health_url", "versions_url"})
#: Kept even when None: absent, it reads as a record from before slow start (eligible long ago).
_KEPT_WHEN_NONE = frozenset({"eligible_since"})


def observation_event(obs: MemberObservation) -> dict[str, Any]:
    """An observation record as kept in history (and read back by replay): every field the
    rules read (``MemberObservation.from_json`` restores it), not the URLs that answered."""
    record = {
        k: v
        for k, v in obs.to_json().items()
        if k not in _NOT_KEPT and (v is not None or k in _KEPT_WHEN_NONE)
    }
    return {"event": "observation", "member": obs.member, "at": obs.checked_at, "record": record}


def config_event(config: FederationConfig, now: float) -> dict[str, Any]:
    """The config a checker started serving (each new writer adds one): replay reads it."""
    return {"event": "config", "at": now, "config": config_to_json(config)}


def due_observations(
    observations: Mapping[str, MemberObservation],
    last_kept: Mapping[str, float],
    now: float,
    interval: float,
) -> list[str]:
    """The members whose observation is due for history: never kept, or kept ``interval``
    seconds ago or more."""
    return [
        name for name in observations if name not in last_kept or now - last_kept[name] >= interval
    ]


def parse_since(text: str, now: float) -> float:
    """``6h``, ``90m``, ``2d``, ``1w`` (that long before ``now``) or a UNIX time."""
    text = text.strip()
    parts = _DURATION.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return now - sum(float(n) * _UNIT[u] for n, u in parts)
    try:
        return float(text)
    except ValueError:
        raise ValueError(
            f"since: {text!r} is neither a duration (6h, 90m, 2d) nor a UNIX time"
        ) from None


def select(
    events: Iterable[dict[str, Any]], since: float | None = None, member: str | None = None
) -> list[dict[str, Any]]:
    """The events at or after ``since`` that concern ``member`` (events about the whole
    federation, such as the reference, concern every member)."""
    return [
        event
        for event in events
        if (since is None or float(event.get("at", 0)) >= since)
        and (member is None or event.get("member", member) == member)
        and (member is None or event["event"] != "launches" or member in event.get("counts", {}))
    ]


def describe(event: Mapping[str, Any]) -> str:
    """One line for people (the checker's log, ``fedredirect history``)."""
    kind = event["event"]
    if kind == "member_state_changed":
        reasons = "; ".join(event.get("reasons") or []) or "all checks pass"
        return f"member {event['member']}: {event['old']} -> {event['new']} ({reasons})"
    if kind == "reference_changed":
        stale = f" (stale: {event['reason']})" if event["stale"] else ""
        return f"reference version: {event['old']} -> {event['new']} from {event['source']}{stale}"
    if kind in ("drain", "undrain"):
        reason = f": {event['reason']}" if event.get("reason") else ""
        return f"member {event['member']} {kind}ed by an operator{reason}"
    if kind == "observation":
        health = (event["record"].get("health") or {}).get("status", "?")
        return f"member {event['member']} observed: health {health}" + _launches(event["record"])
    if kind == "config":
        return f"config served: {len(event['config']['members'])} members"
    if kind == "outage_active":
        if event["new"]:
            return f"outage: {event['reason']}"
        return "outage over: the checker's heartbeat is fresh again"
    if kind == "launches":
        counts = ", ".join(f"{m} {n}" for m, n in event["counts"].items()) or "none"
        return f"router {event['router']} launches so far: {counts}"
    return f"{kind}: {event['old']} -> {event['new']} ({event.get('reason')})"


def _launches(record: Mapping[str, Any]) -> str:
    """An observation's launch outcomes for people, when its member's metrics are read."""
    outcomes = record.get("outcomes")
    if not outcomes:
        return ""
    text = f", launches {outcomes['failures']}/{outcomes['launches']} failed"
    text += f" in {float(outcomes['window']):g}s"
    if outcomes.get("error"):
        text += f" (metrics not read: {outcomes['error']})"
    return text


def context_before(events: Iterable[dict[str, Any]], since: float) -> list[dict[str, Any]]:
    """What a reader starting at ``since`` needs from before it: the latest config, each
    member's latest observation and latest state transition (the config first, the rest
    oldest first). An export
    carries it, so a replay of the export knows the config and where every member stood."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        if float(event.get("at", 0)) >= since:
            continue
        kind = event["event"]
        if kind == "config":
            latest[(kind, "")] = event
        elif kind in ("observation", "member_state_changed", "drain", "undrain"):
            key = "drain" if kind == "undrain" else kind
            latest[(key, str(event.get("member")))] = event
    config = [latest.pop(("config", ""))] if ("config", "") in latest else []
    return config + sorted(latest.values(), key=lambda e: float(e["at"]))
