"""Replay: what happened, and what would have happened under a config, from history.

Pure functions over history events (docs/history.md): the recorded timeline is read from
the transitions the checker wrote; the replayed timeline re-evaluates the recorded
observations with :func:`shared.evaluate.evaluate`, the function the routers serve from,
at every observation and drain and at least every minute, with the heartbeat as of that
step. Both timelines are summarised the same way: time each member spent eligible,
minutes with nobody eligible or the fallback active, the share of a synthetic uniform
launch stream each member received (picked with :meth:`View.pick`), and which alerts of
``deploy/prometheus/alerts.yml`` would have fired and when.

History keeps a member's record at most once per ``history.observation_interval``; in
between, replay takes the record as the checker kept seeing it (its freshness times
carried forward, up to that interval and two check periods). A change that lasted less
than the interval can fall between two records: the recorded column has it, the replayed
one may not.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from shared.balance import Target, cache_key, rendezvous_pick, weighted_random_pick
from shared.config import FederationConfig, config_from_json
from shared.evaluate import STATES, View, evaluate
from shared.records import CheckerHeartbeat, Drain, MemberObservation

#: The alerts replay evaluates, with their ``for:`` in deploy/prometheus/alerts.yml (the
#: command line reads the file; these are its values when it cannot).
REPLAYED_ALERTS: dict[str, float] = {
    "FedredirectNoEligibleMembers": 180.0,
    "FedredirectReferenceStale": 600.0,
    "FedredirectVersionMismatchExcluded": 600.0,
    "FedredirectMemberStarved": 1200.0,
    "FedredirectTrafficConcentrated": 900.0,
    "FedredirectFallbackActive": 300.0,
}
#: The alerts about the machinery itself: replay assumes the checker published at every
#: step and the routers served, so these never fire in a replay.
NOT_REPLAYED: dict[str, str] = {
    "FedredirectCheckerHeartbeatStale": "replay assumes the checker published at every step",
    "FedredirectCheckerDown": "about scraping the checker, not in history",
    "FedredirectCheckerReplicaDown": "about scraping the checker, not in history",
    "FedredirectRouterViewStale": "about a router's reads of Redis, not in history",
    "FedredirectRouterDown": "about scraping the routers, not in history",
}
EVAL_INTERVAL = 60.0  # Prometheus' evaluation interval; also replay's longest step
_STARVED_WINDOW = 600.0  # increase(fedredirect_redirects_total[10m])
_CONCENTRATED_WINDOW = 300.0  # rate(fedredirect_redirects_total[5m])


class ReplayError(ValueError):
    """History that cannot be replayed (no observations, no config)."""


@dataclass(frozen=True)
class Frame:
    """The federation from ``at`` until the next frame: states, flags, who gets launches."""

    at: float
    states: Mapping[str, str]  # member -> state ("unknown" before anything was recorded)
    fallback: bool
    reference_stale: bool
    targets: tuple[Target, ...]
    view: View | None = None  # replayed frames: the view itself, which picks


@dataclass(frozen=True)
class Timeline:
    config: FederationConfig  # weights and balancer, for launches and alerts
    frames: tuple[Frame, ...]
    start: float
    end: float


# --- reading history ----------------------------------------------------------------------


def recorded_config(events: Iterable[Mapping[str, Any]]) -> FederationConfig | None:
    """The config the latest writer served: the last ``config`` event, if any."""
    latest = None
    for event in events:
        if event["event"] == "config":
            latest = event["config"]
    return None if latest is None else config_from_json(latest)


def _span(events: Sequence[Mapping[str, Any]], since: float | None) -> tuple[float, float]:
    observed = [float(e["at"]) for e in events if e["event"] == "observation"]
    if not observed:
        raise ReplayError("no observation in this history: nothing to replay")
    times = [float(e["at"]) for e in events]
    start = min(observed) if since is None else max(since, min(observed))
    if start >= max(times):
        raise ReplayError("nothing recorded after --since: nothing to replay")
    return start, max(times)


def _shifted(obs: MemberObservation, to: float) -> MemberObservation:
    """The record as the checker kept refreshing it until ``to``: every freshness time
    moved by the same amount (ages between them kept), the version dwell left alone."""
    delta = to - obs.checked_at
    if delta <= 0:
        return obs
    health = obs.health
    if health is not None:
        health = replace(health, observed_at=health.observed_at + delta)
    return replace(
        obs,
        checked_at=to,
        health=health,
        healthy_at=None if obs.healthy_at is None else obs.healthy_at + delta,
        versions_at=None if obs.versions_at is None else obs.versions_at + delta,
    )


def replayed_timeline(
    events: Sequence[Mapping[str, Any]],
    config: FederationConfig,
    since: float | None = None,
    hold: float | None = None,
) -> Timeline:
    """Re-evaluate the recorded observations under ``config``: a step at every observation,
    drain and undrain, and at least every minute; each step sees the observations and
    drains recorded up to then, and a heartbeat as of that step. ``hold``: how long a
    record is taken as refreshed (default: the recorded config's observation interval
    plus two of its check periods)."""
    events = sorted(events, key=lambda e: float(e["at"]))
    start, end = _span(events, since)
    if hold is None:
        kept = recorded_config(events) or config
        hold = kept.history.observation_interval + 2 * kept.check.period
    steps = {start + k * EVAL_INTERVAL for k in range(int((end - start) // EVAL_INTERVAL) + 1)}
    steps |= {
        float(e["at"])
        for e in events
        if e["event"] in ("observation", "drain", "undrain") and start <= float(e["at"]) <= end
    }
    latest: dict[str, MemberObservation] = {}
    drains: dict[str, Drain] = {}
    frames: list[Frame] = []
    i = 0
    for t in sorted(steps):
        while i < len(events) and float(events[i]["at"]) <= t:
            event = events[i]
            kind = event["event"]
            if kind == "observation":
                latest[event["member"]] = MemberObservation.from_json(event["record"])
            elif kind == "drain":
                drains[event["member"]] = Drain.from_json(dict(event))
            elif kind == "undrain":
                drains.pop(event["member"], None)
            i += 1
        observations = {
            name: _shifted(obs, min(t, obs.checked_at + hold)) for name, obs in latest.items()
        }
        heartbeat = CheckerHeartbeat("replay", t, start)
        view = evaluate(config, observations, drains, heartbeat, t)
        frames.append(
            Frame(
                at=t,
                states={m.name: m.state for m in view.members},
                fallback=view.fallback_active,
                reference_stale=view.reference.stale,
                targets=view.targets,
                view=view,
            )
        )
    return Timeline(config, tuple(frames), start, end)


def recorded_timeline(
    events: Sequence[Mapping[str, Any]], config: FederationConfig, since: float | None = None
) -> Timeline:
    """What happened: the states, fallback and reference staleness the checker recorded.
    Launches go to the recorded eligible members by weight (else the fallback policy's
    members), with the same balancer as a replay, so the two columns compare."""
    events = sorted(events, key=lambda e: float(e["at"]))
    start, end = _span(events, since)
    states: dict[str, str] = {name: "unknown" for name in config.members}
    fallback = stale = False
    frames: list[Frame] = []
    for event in events:
        kind, at = event["event"], float(event["at"])
        if kind == "config":
            config = config_from_json(event["config"])
            states = {name: states.get(name, "unknown") for name in config.members}
        elif kind == "member_state_changed" and event["member"] in states:
            states[event["member"]] = event["new"]
        elif kind == "fallback_active":
            fallback = bool(event["new"])
        elif kind == "reference_changed":
            stale = bool(event["stale"])
        else:
            continue
        frame = Frame(max(at, start), dict(states), fallback, stale, _targets(config, states))
        if frames and frames[-1].at >= frame.at:
            frames[-1] = frame
        else:
            frames.append(frame)
    if not frames or frames[0].at > start:
        frames.insert(0, Frame(start, {n: "unknown" for n in config.members}, False, False, ()))
    return Timeline(config, tuple(frames), start, end)


def _targets(config: FederationConfig, states: Mapping[str, str]) -> tuple[Target, ...]:
    members = config.members.items()
    eligible = tuple(Target(n, m.url, m.weight) for n, m in members if states[n] == "eligible")
    if eligible:
        return eligible
    policy = config.fallback_policy
    if policy == "prime":
        return tuple(
            Target(n, m.url, 1.0) for n, m in members if m.prime and states[n] != "drained"
        )
    if policy == "all":
        return tuple(
            Target(n, m.url, m.weight)
            for n, m in members
            if states[n] not in ("drained", "unreachable", "unknown")
        )
    return ()


# --- summarising a timeline ---------------------------------------------------------------


def _durations(timeline: Timeline) -> list[tuple[Frame, float]]:
    frames = timeline.frames
    ends = [f.at for f in frames[1:]] + [timeline.end]
    return [(f, max(0.0, end - f.at)) for f, end in zip(frames, ends, strict=True)]


def launches(
    timeline: Timeline, per_minute: float = 60.0, repositories: int = 1000, seed: int = 0
) -> list[tuple[float, str | None]]:
    """A uniform synthetic launch stream over the timeline (``per_minute`` launches of
    ``repositories`` distinct repositories in turn), each picked by the frame in force:
    ``(time, member)``; member None when nobody could take it (503)."""
    rng = random.Random(seed)
    gap = 60.0 / per_minute
    count = int((timeline.end - timeline.start) / gap)
    picked: list[tuple[float, str | None]] = []
    memo: dict[tuple[tuple[Target, ...], int], str | None] = {}
    frames = timeline.frames
    k = 0
    for j in range(count):
        t = timeline.start + j * gap
        while k + 1 < len(frames) and frames[k + 1].at <= t:
            k += 1
        frame = frames[k]
        repo = j % repositories
        path = f"/build/gh/replay/repo-{repo}/HEAD"
        u = rng.random()
        if timeline.config.load_balancer == "rendezvous" and (frame.targets, repo) in memo:
            picked.append((t, memo[frame.targets, repo]))
            continue
        if frame.view is not None:
            member = frame.view.pick(path, None, u).member
        elif timeline.config.load_balancer == "random":
            chosen = weighted_random_pick(u, frame.targets)
            member = chosen.name if chosen else None
        else:
            chosen = rendezvous_pick(cache_key(path), frame.targets)
            member = chosen.name if chosen else None
        memo[frame.targets, repo] = member
        picked.append((t, member))
    return picked


@dataclass(frozen=True)
class Firing:
    alert: str
    member: str | None
    fired_at: float
    resolved_at: float | None  # None: still firing at the end of the history

    def to_json(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "member": self.member,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
        }


def alerts(
    timeline: Timeline,
    picks: Sequence[tuple[float, str | None]],
    alert_for: Mapping[str, float] = REPLAYED_ALERTS,
) -> list[Firing]:
    """The alerts of deploy/prometheus/alerts.yml that read the checker's view and the
    routers' redirect counts, evaluated every minute on the timeline as the checker and
    routers would have exported it: each fires once its condition has held for its
    ``for:``, and resolves at the first evaluation where the condition is false."""
    config = timeline.config
    total_weight = math.fsum(m.weight for m in config.members.values())
    times = [p[0] for p in picks]
    pending: dict[tuple[str, str | None], float] = {}
    firing: dict[tuple[str, str | None], Firing] = {}
    done: list[Firing] = []
    frames = timeline.frames
    k = 0
    lo10 = lo5 = hi = 0
    n_evals = int((timeline.end - timeline.start) // EVAL_INTERVAL) + 1
    for step in range(n_evals):
        t = timeline.start + step * EVAL_INTERVAL
        while k + 1 < len(frames) and frames[k + 1].at <= t:
            k += 1
        frame = frames[k]
        while hi < len(times) and times[hi] <= t:
            hi += 1
        while lo10 < hi and times[lo10] <= t - _STARVED_WINDOW:
            lo10 += 1
        while lo5 < hi and times[lo5] <= t - _CONCENTRATED_WINDOW:
            lo5 += 1
        last10 = [m for _, m in picks[lo10:hi] if m is not None]
        last5 = [m for _, m in picks[lo5:hi] if m is not None]
        active: set[tuple[str, str | None]] = set()
        if not any(s == "eligible" for s in frame.states.values()):
            active.add(("FedredirectNoEligibleMembers", None))
        if frame.reference_stale:
            active.add(("FedredirectReferenceStale", None))
        if frame.fallback:
            active.add(("FedredirectFallbackActive", None))
        for name, state in frame.states.items():
            if state == "version_mismatch":
                active.add(("FedredirectVersionMismatchExcluded", name))
            if state in ("eligible", "version_mismatch") and last10 and name not in last10:
                active.add(("FedredirectMemberStarved", name))
        for name in set(last5):
            share = last5.count(name) / len(last5)
            weight = config.members[name].weight / total_weight if total_weight else 1.0
            if share > 0.9 and weight < 0.9:
                active.add(("FedredirectTrafficConcentrated", name))
        active = {key for key in active if key[0] in alert_for}
        for key in list(pending):
            if key not in active:
                del pending[key]
                if key in firing:
                    done.append(replace(firing.pop(key), resolved_at=t))
        for key in active:
            since = pending.setdefault(key, t)
            if key not in firing and t - since >= alert_for[key[0]]:
                firing[key] = Firing(key[0], key[1], t, None)
    done += firing.values()
    return sorted(done, key=lambda f: (f.fired_at, f.alert, f.member or ""))


def summarise(
    timeline: Timeline,
    per_minute: float = 60.0,
    bucket: float = 3600.0,
    alert_for: Mapping[str, float] = REPLAYED_ALERTS,
) -> dict[str, Any]:
    """One column of the report: times in seconds, shares per ``bucket`` of time."""
    names = list(timeline.config.members)
    eligible = dict.fromkeys(names, 0.0)
    states: dict[str, dict[str, float]] = {name: {} for name in names}
    nobody = fallback = mismatch = stale = 0.0
    for frame, length in _durations(timeline):
        for name in names:
            state = frame.states.get(name, "unknown")
            states[name][state] = states[name].get(state, 0.0) + length
            if state == "eligible":
                eligible[name] += length
            if state == "version_mismatch":
                mismatch += length
        if not any(s == "eligible" for s in frame.states.values()):
            nobody += length
        fallback += length if frame.fallback else 0.0
        stale += length if frame.reference_stale else 0.0
    picks = launches(timeline, per_minute)
    shares: list[dict[str, Any]] = []
    for t, member in picks:
        index = int((t - timeline.start) // bucket)
        while len(shares) <= index:
            shares.append({"from": timeline.start + len(shares) * bucket, "counts": {}, "total": 0})
        row = shares[index]
        row["total"] += 1
        key = member or "(nobody)"
        row["counts"][key] = row["counts"].get(key, 0) + 1
    order = {s: i for i, s in enumerate((*STATES, "unknown"))}
    return {
        "eligible_seconds": eligible,
        "state_seconds": {
            name: dict(sorted(by.items(), key=lambda kv: order.get(kv[0], 99)))
            for name, by in states.items()
        },
        "nobody_eligible_seconds": nobody,
        "fallback_seconds": fallback,
        "version_mismatch_seconds": mismatch,
        "reference_stale_seconds": stale,
        "launches": {"per_minute": per_minute, "bucket_seconds": bucket, "buckets": shares},
        "alerts": [f.to_json() for f in alerts(timeline, picks, alert_for)],
    }


def counted_launches(
    events: Iterable[Mapping[str, Any]], start: float, end: float, bucket: float = 3600.0
) -> list[dict[str, Any]]:
    """The launches the routers counted (``launches`` events: each router's counts since
    it started), per ``bucket`` of time from ``start``: the launches between two of a
    router's events go to the bucket of the later one."""
    buckets: list[dict[str, Any]] = [
        {"from": start + i * bucket, "counts": {}, "total": 0}
        for i in range(max(1, math.ceil((end - start) / bucket)))
    ]
    last: dict[tuple[str, float], Mapping[str, int]] = {}
    for event in sorted(
        (e for e in events if e["event"] == "launches"), key=lambda e: float(e["at"])
    ):
        key = (str(event["router"]), float(event["started_at"]))
        before, counts = last.get(key, {}), event["counts"]
        last[key] = counts
        at = float(event["at"])
        if not start <= at <= end:
            continue
        row = buckets[min(int((at - start) // bucket), len(buckets) - 1)]
        for member, count in counts.items():
            new = int(count) - int(before.get(member, 0))
            if new > 0:
                row["counts"][member] = row["counts"].get(member, 0) + new
                row["total"] += new
    return buckets


def replay(
    events: Sequence[Mapping[str, Any]],
    config: FederationConfig | None = None,
    since: float | None = None,
    per_minute: float = 60.0,
    bucket: float = 3600.0,
    alert_for: Mapping[str, float] = REPLAYED_ALERTS,
    config_from: str | None = None,
    served: FederationConfig | None = None,
) -> dict[str, Any]:
    """The report: what happened (recorded transitions, under the recorded config) and
    what would have happened under ``config`` (default: the recorded config);
    ``config_from`` says where ``config`` came from, for people. ``served``: the config
    being served (the store's), which stands for the recorded one once history no longer
    holds a ``config`` event (the stream is capped by age)."""
    recorded = recorded_config(events) or served
    if recorded is None and config is None:
        raise ReplayError("no config event in this history: give a config to replay under")
    chosen = config or recorded
    assert chosen is not None
    replayed = replayed_timeline(events, chosen, since)
    doc: dict[str, Any] = {
        "from": replayed.start,
        "to": replayed.end,
        "config": {
            "from": (config_from or "given") if config is not None else "history",
            "reference_policy": chosen.reference_policy,
            "fallback": chosen.fallback_policy,
            "pod_headroom": chosen.pod_headroom,
        },
        "replayed": summarise(replayed, per_minute, bucket, alert_for),
        "alerts_not_replayed": dict(NOT_REPLAYED),
    }
    if recorded is not None:
        history = recorded_timeline(events, recorded, since)
        doc["recorded_config"] = {
            "reference_policy": recorded.reference_policy,
            "fallback": recorded.fallback_policy,
            "pod_headroom": recorded.pod_headroom,
        }
        doc["recorded"] = summarise(history, per_minute, bucket, alert_for)
        if any(e["event"] == "launches" for e in events):
            doc["recorded"]["counted_launches"] = counted_launches(
                events, replayed.start, replayed.end, bucket
            )
    return doc


# --- for people ---------------------------------------------------------------------------


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(at))


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}m" if hours else f"{rest}m"


def render(report: Mapping[str, Any]) -> str:
    """The report side by side: what happened | what would have happened."""
    replayed = report["replayed"]
    recorded = report.get("recorded")
    cfg = report["config"]
    lines = [
        f"history {_clock(report['from'])} .. {_clock(report['to'])} UTC "
        f"({_minutes(report['to'] - report['from'])})",
        "happened: recorded transitions"
        + (
            f" (reference {report['recorded_config']['reference_policy']}, "
            f"fallback {report['recorded_config']['fallback']})"
            if recorded
            else " (none: no config event in this history)"
        ),
        "would have: replayed under the "
        + ("recorded config" if cfg["from"] == "history" else f"config of {cfg['from']}")
        + " "
        f"(reference {cfg['reference_policy']}, fallback {cfg['fallback']})",
        "",
        f"{'':28}{'happened':>12}{'would have':>12}",
    ]

    def row(label: str, key: str, member: str | None = None) -> None:
        def value(col: Mapping[str, Any] | None) -> str:
            if col is None:
                return "-"
            return _minutes(col[key][member] if member else col[key])

        lines.append(f"{label:28}{value(recorded):>12}{value(replayed):>12}")

    for name in replayed["eligible_seconds"]:
        row(f"{name} eligible", "eligible_seconds", name)
    row("nobody eligible", "nobody_eligible_seconds")
    row("fallback active", "fallback_seconds")
    row("version mismatch (members)", "version_mismatch_seconds")
    row("reference stale", "reference_stale_seconds")
    per_minute = replayed["launches"]["per_minute"]
    lines += ["", f"share of launches ({per_minute:g} a minute, uniform), happened | would have:"]
    buckets = zip(
        recorded["launches"]["buckets"]
        if recorded
        else [None] * len(replayed["launches"]["buckets"]),
        replayed["launches"]["buckets"],
        strict=False,
    )

    def shares(b: Mapping[str, Any] | None) -> str:
        if b is None or not b["total"]:
            return "-"
        return " ".join(
            f"{m} {100 * n / b['total']:.0f}%" for m, n in sorted(b["counts"].items()) if n
        )

    for happened, would in buckets:
        lines.append(f"  {_clock(would['from'])[11:]}  {shares(happened):40} | {shares(would)}")
    if recorded and "counted_launches" in recorded:
        lines += ["", "launches the routers counted (happened):"]
        for b in recorded["counted_launches"]:
            lines.append(f"  {_clock(b['from'])[11:]}  {shares(b)} ({b['total']} launches)")
    lines += ["", "alerts (deploy/prometheus/alerts.yml), happened | would have:"]

    def firings(col: Mapping[str, Any] | None) -> list[str]:
        if col is None:
            return []
        return [
            f"{_clock(f['fired_at'])[11:]}-"
            + (_clock(f["resolved_at"])[11:] if f["resolved_at"] else "end  ")
            + f" {f['alert'].removeprefix('Fedredirect')}"
            + (f"{{{f['member']}}}" if f["member"] else "")
            for f in col["alerts"]
        ]

    left, right = firings(recorded), firings(replayed)
    for i in range(max(len(left), len(right), 1)):
        a = left[i] if i < len(left) else ("none" if i == 0 else "")
        b = right[i] if i < len(right) else ("none" if i == 0 else "")
        lines.append(f"  {a:52} | {b}".rstrip())
    lines.append(f"not replayed: {', '.join(report['alerts_not_replayed'])}")
    return "\n".join(lines)
