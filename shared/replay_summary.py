"""Summarising a replay timeline (:mod:`shared.replay`), recorded or replayed alike.

Time each member spent in each state, minutes with nobody eligible or the fallback active,
the share of a synthetic uniform launch stream each member received (picked with
:meth:`View.pick`, as a router picks: under ``bounded`` against a
:class:`shared.bounded.LaunchWindow` of the stream, as one router's), how closely each
repository kept one member and the highest load against a member's weighted share
(:func:`affinity`, :func:`peak_load_ratio`), and which alerts of
``deploy/prometheus/alerts.yml`` would have fired and when (their ``for:`` read from that
file by the caller). Beside the recorded column, the launches the routers counted
(:func:`counted_launches`).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.balance import Target
from shared.bounded import LaunchWindow
from shared.evaluate import STATES
from shared.replay_alerts import alerts

if TYPE_CHECKING:  # shared.replay builds the timelines and imports this to summarise them
    from shared.replay import Frame, Timeline


def _durations(timeline: Timeline) -> list[tuple[Frame, float]]:
    frames = timeline.frames
    ends = [f.at for f in frames[1:]] + [timeline.end]
    return [(f, max(0.0, end - f.at)) for f, end in zip(frames, ends, strict=True)]


class Launch(NamedTuple):
    """One synthetic launch: when, of which repository, where it went (None: a 503), and
    the weighted share of each member it could have gone to (the targets then)."""

    at: float
    repo: int
    member: str | None
    shares: Mapping[str, float]


def launch_stream(
    timeline: Timeline, per_minute: float = 60.0, repositories: int = 1000, seed: int = 0
) -> list[Launch]:
    """A uniform synthetic launch stream over the timeline (``per_minute`` launches of
    ``repositories`` distinct repositories in turn), each picked by the view in force, as
    a router picks; under ``bounded``, against the stream's own launches in the window."""
    rng = random.Random(seed)
    gap = 60.0 / per_minute
    count = int((timeline.end - timeline.start) / gap)
    config = timeline.config
    # rendezvous answers depend on the path and the targets only (shared.evaluate.balance)
    cached = config.load_balancer == "rendezvous"
    window = LaunchWindow(config.bounded_load.window) if config.load_balancer == "bounded" else None
    memo: dict[tuple[tuple[Target, ...], int], str | None] = {}
    shares: dict[tuple[Target, ...], Mapping[str, float]] = {}
    picked: list[Launch] = []
    for j in range(count):
        t = timeline.start + j * gap
        view = timeline.frame_at(t).view
        repo = j % repositories
        u = rng.random()
        if view.targets not in shares:
            shares[view.targets] = weighted_shares(view.targets)
        if cached and (view.targets, repo) in memo:
            picked.append(Launch(t, repo, memo[view.targets, repo], shares[view.targets]))
            continue
        if window is not None:
            window.advance(t)
        member = view.pick(f"/build/gh/replay/repo-{repo}/HEAD", None, u, window).member
        if window is not None and member is not None:
            window.add(member)
        memo[view.targets, repo] = member
        picked.append(Launch(t, repo, member, shares[view.targets]))
    return picked


def launches(
    timeline: Timeline, per_minute: float = 60.0, repositories: int = 1000, seed: int = 0
) -> list[tuple[float, str | None]]:
    """:func:`launch_stream` as ``(time, member)``; member None when nobody could take it."""
    return [(x.at, x.member) for x in launch_stream(timeline, per_minute, repositories, seed)]


def weighted_shares(targets: Sequence[Target]) -> dict[str, float]:
    """Each target's weight / the targets' weight: its share of launches with no hot spot."""
    total = math.fsum(t.weight for t in targets if t.weight > 0)
    return {t.name: t.weight / total for t in targets if t.weight > 0}


def affinity(picks: Iterable[tuple[Hashable, str | None]]) -> float | None:
    """The share of launches that went to their repository's most-used member: each
    repository's launches to that member, summed, over all launches that went somewhere
    (1.0: every repository kept one member; None: no launch)."""
    by_repo: dict[Hashable, Counter[str]] = {}
    for repo, member in picks:
        if member is not None:
            by_repo.setdefault(repo, Counter())[member] += 1
    total = sum(sum(c.values()) for c in by_repo.values())
    if not total:
        return None
    return sum(max(c.values()) for c in by_repo.values()) / total


def peak_load_ratio(
    stream: Sequence[tuple[float, str | None, Mapping[str, float]]], window: float
) -> tuple[float, str | None] | None:
    """The highest (a member's launches / its weighted share of all launches) over every
    ``window`` seconds of ``stream`` (time-ordered ``(time, member, the weighted shares
    then)``) within which the shares stayed the same: each window ending at a launch, once
    the shares have held that long (so a member that has just become a target is not
    judged by its first launch). With the member it is reached by; None when no window is
    that long."""
    counts: Counter[str] = Counter()
    peak: tuple[float, str | None] | None = None
    lo = since = 0  # the window's first launch; the first launch with the current shares
    for i, (at, member, shares) in enumerate(stream):
        if member is not None:
            counts[member] += 1
        if i and shares != stream[i - 1][2]:
            since = i
        while stream[lo][0] <= at - window:
            gone = stream[lo][1]
            if gone is not None:
                counts[gone] -= 1
            lo += 1
        if at - window < stream[since][0]:
            continue
        n = i + 1 - lo
        for name, count in counts.items():
            share = shares.get(name, 0.0)
            ratio = count / (share * n) if share > 0 else math.inf
            if count and (peak is None or ratio > peak[0]):
                peak = (ratio, name)
    return peak


def summarise(
    timeline: Timeline,
    per_minute: float = 60.0,
    bucket: float = 3600.0,
    alert_for: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """One column of the report: times in seconds, shares per ``bucket`` of time."""
    names = list(timeline.config.members)
    eligible = dict.fromkeys(names, 0.0)
    states: dict[str, dict[str, float]] = {name: {} for name in names}
    nobody = fallback = mismatch = failing = stale = 0.0
    for frame, length in _durations(timeline):
        for name in names:
            state = frame.states.get(name, "unknown")
            states[name][state] = states[name].get(state, 0.0) + length
            if state == "eligible":
                eligible[name] += length
            if state == "version_mismatch":
                mismatch += length
            if state == "failing":
                failing += length
        if not any(s == "eligible" for s in frame.states.values()):
            nobody += length
        fallback += length if frame.fallback else 0.0
        stale += length if frame.reference_stale else 0.0
    stream = launch_stream(timeline, per_minute)
    picks = [(x.at, x.member) for x in stream]
    peak = peak_load_ratio(
        [(x.at, x.member, x.shares) for x in stream], timeline.config.bounded_load.window
    )
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
        "failing_seconds": failing,
        "reference_stale_seconds": stale,
        "launches": {
            "per_minute": per_minute,
            "bucket_seconds": bucket,
            "buckets": _shares(timeline, picks, bucket),
            "affinity": affinity((x.repo, x.member) for x in stream),
            "peak_load_window_seconds": timeline.config.bounded_load.window,
            "peak_load_ratio": None if peak is None else peak[0],
            "peak_load_member": None if peak is None else peak[1],
        },
        "alerts": [f.to_json() for f in alerts(timeline, picks, alert_for or {})],
    }


def _shares(
    timeline: Timeline, picks: Sequence[tuple[float, str | None]], bucket: float
) -> list[dict[str, Any]]:
    """The launches each member received per ``bucket`` of time ("(nobody)": a 503)."""
    shares: list[dict[str, Any]] = []
    for t, member in picks:
        index = int((t - timeline.start) // bucket)
        while len(shares) <= index:
            shares.append({"from": timeline.start + len(shares) * bucket, "counts": {}, "total": 0})
        row = shares[index]
        row["total"] += 1
        key = member or "(nobody)"
        row["counts"][key] = row["counts"].get(key, 0) + 1
    return shares


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
