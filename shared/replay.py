"""Replay: what happened, and what would have happened under a config, from history.

Pure functions over history events (docs/history.md): the recorded timeline is read from
the transitions the checker wrote; the replayed timeline re-evaluates the recorded
observations with :func:`shared.evaluate.evaluate`, the function the routers serve from,
at every observation and drain and at least every minute, with the heartbeat as of that
step. Both timelines are summarised the same way (:mod:`shared.replay_summary`): time in
each state, where a synthetic launch stream goes, and which alerts would have fired.

History keeps a member's record at most once per ``history.observation_interval``; in
between, replay takes the record as the checker kept seeing it (its freshness times
carried forward, up to that interval and two check periods). A change that lasted less
than the interval can fall between two records: the recorded column has it, the replayed
one may not. So can an ejection for failing launches (``failing``): the replayed column
keeps a member ejected as its records say (history holds the counts at each record, not
the samples the checker judged), unless the config replayed under reads no metrics.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.balance import Target
from shared.config import FederationConfig, config_from_json
from shared.evaluate import STATES, MemberView, View, evaluate, fallback_targets
from shared.records import CheckerHeartbeat, Drain, LaunchOutcomes, MemberObservation
from shared.replay_alerts import EVAL_INTERVAL, not_replayed
from shared.replay_summary import counted_launches, summarise


class ReplayError(ValueError):
    """History that cannot be replayed (no observations, no config)."""


@dataclass(frozen=True)
class Frame:
    """The federation from ``at`` until the next frame: states, flags, and the view a
    router would have picked launches from."""

    at: float
    states: Mapping[str, str]  # member -> state ("unknown" before anything was recorded)
    fallback: bool
    reference_stale: bool
    view: View
    #: member -> its launch outcomes as recorded, for members whose metrics were read
    outcomes: Mapping[str, LaunchOutcomes] = field(default_factory=dict)

    @property
    def effective_weights(self) -> dict[str, float]:
        """member -> the weight its launches were balanced by, as the checker exports it
        (``fedredirect_member_effective_weight``)."""
        return {m.name: m.effective_weight for m in self.view.members}


@dataclass(frozen=True)
class Timeline:
    config: FederationConfig  # weights and balancer, for launches and alerts
    frames: tuple[Frame, ...]
    start: float
    end: float

    def frame_at(self, t: float) -> Frame:
        """The frame in force at ``t`` (the first one before it begins)."""
        return self.frames[max(0, bisect_right(self.frames, t, key=lambda f: f.at) - 1)]


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
        versions_at=None if obs.versions_at is None else obs.versions_at + delta,
    )


def _as_configured(config: FederationConfig, obs: MemberObservation) -> MemberObservation:
    """The record as a checker running ``config`` would have made it: without launch
    outcomes where that config reads no metrics (``outcomes.enabled: false``, the member's
    ``metrics: false``), so never ejected. Otherwise an ejection stands as recorded:
    history keeps the counts at each record, not the samples the checker judged."""
    member = config.members.get(obs.member)
    if obs.outcomes is None or (
        config.outcomes.enabled and member is not None and member.metrics is not False
    ):
        return obs
    return replace(obs, outcomes=None)


def _steps(events: Sequence[Mapping[str, Any]], start: float, end: float) -> list[float]:
    """Every minute from ``start``, and every observation, drain and undrain in between."""
    steps = {start + k * EVAL_INTERVAL for k in range(int((end - start) // EVAL_INTERVAL) + 1)}
    steps |= {
        float(e["at"])
        for e in events
        if e["event"] in ("observation", "drain", "undrain") and start <= float(e["at"]) <= end
    }
    return sorted(steps)


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
    latest: dict[str, MemberObservation] = {}
    drains: dict[str, Drain] = {}
    frames: list[Frame] = []
    i = 0
    for t in _steps(events, start, end):
        while i < len(events) and float(events[i]["at"]) <= t:
            event, kind = events[i], events[i]["event"]
            if kind == "observation":
                record = MemberObservation.from_json(event["record"])
                latest[event["member"]] = _as_configured(config, record)
            elif kind == "drain":
                drains[event["member"]] = Drain.from_json(dict(event))
            elif kind == "undrain":
                drains.pop(event["member"], None)
            i += 1
        observations = {
            name: _shifted(obs, min(t, obs.checked_at + hold)) for name, obs in latest.items()
        }
        view = evaluate(config, observations, drains, CheckerHeartbeat("replay", t), t)
        states = {m.name: m.state for m in view.members}
        counted = {m.name: m.outcomes for m in view.members if m.outcomes is not None}
        frames.append(Frame(t, states, view.fallback_active, view.reference.stale, view, counted))
    return Timeline(config, tuple(frames), start, end)


def recorded_timeline(
    events: Sequence[Mapping[str, Any]], config: FederationConfig, since: float | None = None
) -> Timeline:
    """What happened: the states, fallback and reference staleness the checker recorded,
    and the launch outcomes of its latest records. Launches go where a router would have
    sent them from the recorded states (the core's fallback rule and balancer), so the two
    columns compare."""
    events = sorted(events, key=lambda e: float(e["at"]))
    start, end = _span(events, since)
    recorded: dict[str, Mapping[str, Any]] = {}  # member -> its latest state change
    counted: dict[str, LaunchOutcomes | None] = {}  # member -> its latest record's outcomes
    fallback = stale = False
    frames: list[Frame] = []
    for event in events:
        kind, at = event["event"], float(event["at"])
        if kind == "config":
            config = config_from_json(event["config"])
        elif kind == "member_state_changed" and event["member"] in config.members:
            recorded[event["member"]] = event
        elif kind == "fallback_active":
            fallback = bool(event["new"])
        elif kind == "reference_changed":
            stale = bool(event["stale"])
        elif kind == "observation" and event["member"] in config.members:
            raw = event["record"].get("outcomes")
            outcomes = LaunchOutcomes.from_json(raw) if raw else None
            if counted.get(event["member"]) == outcomes:
                continue
            counted[event["member"]] = outcomes
        else:
            continue
        frame = _recorded_frame(max(at, start), config, recorded, fallback, stale, counted)
        if frames and frames[-1].at >= frame.at:
            frames[-1] = frame
        else:
            frames.append(frame)
    if not frames or frames[0].at > start:
        frames.insert(0, _recorded_frame(start, config, {}, False, False, {}))
    return Timeline(config, tuple(frames), start, end)


def _recorded_frame(
    at: float,
    config: FederationConfig,
    recorded: Mapping[str, Mapping[str, Any]],
    fallback: bool,
    stale: bool,
    counted: Mapping[str, LaunchOutcomes | None],
) -> Frame:
    """The recorded states at ``at``, and the view a router would have served from them:
    the eligible members, else the core's fallback set; ``counted``: the latest records'
    launch outcomes."""
    unobserved = evaluate(config, {}, {}, None, at)  # every member before any observation
    members = tuple(_as_recorded(m, recorded.get(m.name)) for m in unobserved.members)
    eligible = tuple(Target(m.name, m.url, m.weight) for m in members if m.eligible)
    view = replace(
        unobserved,
        members=members,
        targets=eligible or fallback_targets(config.fallback_policy, members),
        fallback_active=not eligible,
        fallback_reason=None,
    )
    states = {
        name: recorded[name]["new"] if name in recorded else "unknown" for name in config.members
    }
    outcomes = {name: o for name, o in counted.items() if o is not None and name in states}
    return Frame(at, states, fallback, stale, view, outcomes)


def _as_recorded(member: MemberView, event: Mapping[str, Any] | None) -> MemberView:
    """``member`` as its latest state change recorded it: the state, its reasons, and every
    rule that excluded it where the event lists them (``excluded_by``), else the state's
    rule alone; its effective weight is its configured one while eligible (a transition
    records no capacity or ramp, and this column balances by configured weights). Nothing
    recorded: as the core sees a member never observed."""
    state = None if event is None else next((s for s in STATES if s == event["new"]), None)
    if event is None or state is None:
        return member
    excluded = set(event.get("excluded_by") or (state,))
    return member._replace(
        state=state,
        reasons=tuple(event.get("reasons", ())),
        excluded_by=tuple(s for s in STATES if s in excluded and s != "eligible"),
        effective_weight=member.weight if state == "eligible" else 0.0,
    )


# --- the report ---------------------------------------------------------------------------


def balancer_json(config: FederationConfig) -> dict[str, Any]:
    """The balancer a column's launches were picked with, and its bound (``bounded``)."""
    bounded = config.load_balancer == "bounded"
    return {
        "load_balancer": config.load_balancer,
        "bounded_load": config.bounded_load.model_dump() if bounded else None,
    }


def replay(
    events: Sequence[Mapping[str, Any]],
    config: FederationConfig | None = None,
    since: float | None = None,
    per_minute: float = 60.0,
    bucket: float = 3600.0,
    alert_for: Mapping[str, float] | None = None,
    config_from: str | None = None,
    served: FederationConfig | None = None,
) -> dict[str, Any]:
    """The report: what happened (recorded transitions, under the recorded config) and
    what would have happened under ``config`` (default: the recorded config);
    ``config_from`` says where ``config`` came from, for people. ``served``: the config
    being served (the store's), which stands for the recorded one once history no longer
    holds a ``config`` event (the stream is capped by age). ``alert_for``: each alert's
    ``for:`` in seconds, from the rule file (:func:`alert_durations`); without it no alert
    is replayed, and the alert on launch outcomes only when history holds some."""
    recorded = recorded_config(events) or served
    if recorded is None and config is None:
        raise ReplayError("no config event in this history: give a config to replay under")
    counted = any(e["event"] == "observation" and e["record"].get("outcomes") for e in events)
    skipped = not_replayed(alert_for or {}, outcomes_recorded=counted)
    alert_for = {name: s for name, s in (alert_for or {}).items() if name not in skipped}
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
            **balancer_json(chosen),
        },
        "replayed": summarise(replayed, per_minute, bucket, alert_for),
        "alerts_not_replayed": skipped,
    }
    if recorded is not None:
        history = recorded_timeline(events, recorded, since)
        doc["recorded_config"] = {
            "reference_policy": recorded.reference_policy,
            "fallback": recorded.fallback_policy,
            "pod_headroom": recorded.pod_headroom,
            **balancer_json(recorded),
        }
        doc["recorded"] = summarise(history, per_minute, bucket, alert_for)
        if any(e["event"] == "launches" for e in events):
            doc["recorded"]["counted_launches"] = counted_launches(
                events, replayed.start, replayed.end, bucket
            )
    return doc
