"""The checker process: poll every member, publish what changed to the store.

Each member has its own loop (a slow member never delays another's checks), with its own
connection pool (see checker.pool). A single publisher writes the members whose records
changed, coalesced (at most once per PUBLISH_INTERVAL) and at least once a period as the
heartbeat. The thinking is in ``shared``: this module only moves data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from checker.metrics import CheckerMetrics
from checker.pool import OriginClients
from checker.probe import Answer, Outcome, fetch_parsed
from shared.changes import view_changes
from shared.config import FederationConfig, MemberConfig
from shared.evaluate import View, state_may_change
from shared.history import (
    config_event,
    describe,
    due_observations,
    observation_event,
    outage_events,
    transitions,
)
from shared.keeper import ViewKeeper
from shared.observe import HealthStreak, health_failure, health_is_failing, next_observation
from shared.outcomes import (
    LaunchTotals,
    Reading,
    Sample,
    carried_on,
    counting_start,
    is_ejected,
    judge,
    launch_totals,
    qualifies,
    slide,
    window_counts,
)
from shared.payloads import PayloadError, parse_health, parse_versions
from shared.records import (
    CheckerHeartbeat,
    Drain,
    HealthObservation,
    LaunchOutcomes,
    MemberObservation,
)
from shared.schedule import CheckKind, is_falling, next_check, retry_window
from shared.store import Snapshot, Store

log = logging.getLogger("fedredirect.checker")

#: Routine publishes (records that changed only in their check time, or in pod counts that
#: move no state) are at least this far apart (seconds), so results that finish together go
#: out in one write.
PUBLISH_INTERVAL = 0.1
#: A change that can move a member's state goes out at once, but publishes are never closer
#: than this, so a burst of them is still coalesced.
URGENT_SPACING = 0.01


class Checker:
    def __init__(
        self,
        config: FederationConfig,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        checker_id: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.rng = rng or random.Random()
        self.checker_id = checker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.observations: dict[str, MemberObservation] = {}
        self.streaks: dict[str, HealthStreak] = {}  # flap damping's state: never published
        # The view of what this checker last published, evaluated only when a verdict may
        # have changed: for its logs, its history and its metrics alike.
        self.keeper = ViewKeeper(clock)
        self.drains: dict[str, Drain] = {}
        self.last_published_at: float | None = None
        self.fence: int | None = None  # the writer lease's fencing token while we hold it
        self.metrics = CheckerMetrics(self.published, lambda: self.last_published_at)
        self._changed = asyncio.Event()
        self._urgent = asyncio.Event()  # a change that can move a state waits to be published
        self._next_health: dict[str, float] = {}
        self._dirty: set[str] = set()  # members whose records changed since the last publish
        self._full_publish = True  # the next publish rewrites everything (new writer)
        # An idle connection outlives the wait for its member's next check, so each check
        # reuses it instead of opening a new one (a TLS handshake, for real members).
        self.clients = OriginClients(keepalive=3 * config.check.period + 5)
        self._history_kept: dict[str, float] = {}  # member -> when its record was last kept
        self._history_trimmed_at = 0.0
        # Each member's launch totals over the outcomes window (never published), and the
        # members the next judgement must see besides the one read: those ejected or
        # qualifying, so a judgement costs the same however large the federation.
        self.launch_samples: dict[str, tuple[Sample, ...]] = {}
        self._contenders: set[str] = set()
        self._taking_over = False  # a new lease: carry on the ejections last published
        for name in config.members:
            if self.metrics_url(name) is not None:
                self.metrics.ejections.labels(name)  # exported from 0, so increase() sees the first
        if config.outcomes.enabled and config.outcomes_window < config.check.period:
            log.warning(
                "outcomes.window (%gs) is shorter than check.period (%gs): it never holds two "
                "reads of a member's metrics, so no member is judged by its launches",
                config.outcomes_window,
                config.check.period,
            )

    def metrics_url(self, name: str) -> str | None:
        """Where a member's launch counts are read; None when they are not."""
        metrics = self.config.members[name].metrics
        return metrics if self.config.outcomes.enabled and metrics is not False else None

    # --- one check of one member -------------------------------------------------------

    async def check_member(self, name: str, kind: CheckKind = "round") -> None:
        """One check of a member: a round (/health when due, /versions, /metrics when
        read), or /health alone while it is falling (shared.schedule)."""
        member = self.config.members[name]
        check = self.config.check
        mono = time.monotonic()
        deadline = mono + retry_window(check, self.observations.get(name))
        whole = kind == "round"
        health_due = not whole or mono >= self._next_health.get(name, 0.0)
        metrics_url = self.metrics_url(name) if whole else None
        health_outcome, versions_outcome, metrics_outcome = await asyncio.gather(
            self._fetch_health(member, deadline) if health_due else _nothing(),
            self._fetch_versions(member, deadline) if whole else _nothing(),
            self._fetch_metrics(metrics_url, deadline) if metrics_url else _nothing(),
        )
        now = self.clock()
        if versions_outcome is not None:
            self._record_metrics(name, "versions", versions_outcome)
        if health_outcome is not None:
            self._record_metrics(name, "health", health_outcome)
        health = _health_from(health_outcome, now) if health_outcome else None
        previous = self.observations.get(name)
        obs, streak = next_observation(
            previous,
            name,
            now,
            health=health,
            versions=versions_outcome.value if versions_outcome else None,
            versions_error=versions_outcome.error if versions_outcome else None,
            streak=self.streaks.get(name, HealthStreak()),
            health_url=health_outcome.url if health_outcome else None,
            versions_url=versions_outcome.url if versions_outcome else None,
            rise=check.rise,
            fall=check.fall,
            min_dwell=self.config.versions_min_dwell,
            stale_after=self.config.stale_after,
        )
        self.observations[name] = obs
        self.streaks[name] = streak
        self._dirty.add(name)
        if metrics_outcome is not None:
            self._record_metrics(name, "metrics", metrics_outcome)
            self._judge_launches(name, metrics_outcome, now)
        if state_may_change(previous, self.observations[name], self.config.pod_headroom):
            self._urgent.set()
        if health_due:
            wait = check.failed_period if health_is_failing(obs, streak) else 0.0
            self._next_health[name] = time.monotonic() + wait
        self._changed.set()

    def _record_metrics(self, member: str, endpoint: str, outcome: Outcome[Any]) -> None:
        self.metrics.check_duration.labels(member, endpoint).observe(outcome.duration)
        reason: str | None = outcome.kind
        if isinstance(outcome.value, HealthObservation) and outcome.value.status == "unhealthy":
            reason = "member_unhealthy"
        if reason is not None:
            self.metrics.check_failures.labels(member, endpoint, reason).inc()

    def current_view(self) -> View | None:
        """The view of what this checker last published (for metrics). None on a standby:
        only the writer exports the view, so a former writer's frozen view cannot keep an
        alert firing."""
        return self.keeper.view if self.fence is not None else None

    def published(self) -> tuple[View, Snapshot] | None:
        """The view of what this checker last published and those records, while it is
        the writer (None on a standby)."""
        view, snapshot = self.keeper.view, self.keeper.snapshot
        if self.fence is None or view is None or snapshot is None:
            return None
        return view, snapshot

    async def _fetch_health(
        self, member: MemberConfig, deadline: float
    ) -> Outcome[HealthObservation]:
        check = self.config.check
        now = self.clock()
        return await fetch_parsed(
            self.clients.for_url(member.health),
            member.health,
            lambda a: parse_health(a.status, a.body, now),
            timeout=check.timeout,
            max_bytes=check.max_body_bytes,
            retries=check.retries,
            deadline=deadline,
            gate=self.clients.gate,
        )

    async def _fetch_versions(
        self, member: MemberConfig, deadline: float
    ) -> Outcome[dict[str, str]]:
        check = self.config.check
        return await fetch_parsed(
            self.clients.for_url(member.versions),
            member.versions,
            _parse_versions,
            timeout=check.timeout,
            max_bytes=check.max_body_bytes,
            retries=check.retries,
            deadline=deadline,
            gate=self.clients.gate,
        )

    async def _fetch_metrics(self, url: str, deadline: float) -> Outcome[LaunchTotals]:
        """A member's launch totals: one request a period, never retried (a read missed
        leaves one sample out of the window, and a member is never excluded for it)."""
        check = self.config.check
        return await fetch_parsed(
            self.clients.for_url(url),
            url,
            _parse_metrics,
            timeout=check.timeout,
            max_bytes=check.max_body_bytes,
            retries=0,
            deadline=deadline,
            gate=self.clients.gate,
        )

    def _judge_launches(self, name: str, outcome: Outcome[LaunchTotals], now: float) -> None:
        """Add what was read to the member's window, then judge it together with every
        member ejected or qualifying (they share the cap): shared.outcomes decides."""
        settings = self.config.outcomes
        if outcome.value is not None:
            sample = Sample(now, outcome.value)
            samples = self.launch_samples.get(name, ())
            self.launch_samples[name] = slide(samples, sample, self.config.outcomes_window)
        judged = {name} | self._contenders
        previous = {n: self.observations[n].outcomes for n in judged}
        readings = {
            n: Reading(
                window_counts(
                    self.launch_samples.get(n, ()), counting_start(self.config, previous[n], now)
                ),
                outcome.error if n == name else _error(previous[n]),
            )
            for n in judged
        }
        for n, outcomes in judge(self.config, previous, readings, now).items():
            if is_ejected(outcomes, now) or qualifies(settings, readings[n].counts):
                self._contenders.add(n)
            else:
                self._contenders.discard(n)
            self._set_outcomes(n, outcomes, refresh=n == name)

    def _set_outcomes(self, name: str, outcomes: LaunchOutcomes, *, refresh: bool) -> None:
        """Write a judgement into the member's record: always for the member just read,
        for another only when it is a new ejection (its counts wait for its own read)."""
        old = self.observations[name]
        before = old.outcomes.ejected_until if old.outcomes else None
        ejected = outcomes.ejected_until is not None and outcomes.ejected_until != before
        if not (refresh or ejected):
            return
        new = replace(old, outcomes=outcomes)
        self.observations[name] = new
        self._dirty.add(name)
        if ejected and self.fence is not None:  # a standby's judgements are not published
            self.metrics.ejections.labels(name).inc()
        if state_may_change(old, new, self.config.pod_headroom):
            self._urgent.set()

    async def member_loop(self, name: str) -> None:
        """Check one member: a round every period (± jitter), start to start, so a slow
        check does not push the next one later and members keep the phases their first
        checks had (a large federation's checks stay spread over the period instead of
        coming in waves); between rounds, /health alone every fast interval while the
        member is falling (shared.schedule). One check at a time: the next starts once
        this one has ended."""
        check = self.config.check
        kind: CheckKind = "round"
        while True:
            started = time.monotonic()
            if kind == "round":
                round_at = started + check.period * (
                    1 + self.rng.uniform(-check.jitter, check.jitter)
                )
            try:
                await self.check_member(name, kind)
            except Exception:  # a bug here must not stop the other members' checks
                log.exception("check of member %s failed unexpectedly", name)
            falling = is_falling(
                self.observations.get(name), self.streaks.get(name, HealthStreak())
            )
            upcoming = next_check(check, started, round_at, falling)
            kind = upcoming.kind
            await asyncio.sleep(max(0.0, upcoming.at - time.monotonic()))

    # --- publishing ---------------------------------------------------------------------

    async def publish(self) -> None:
        """Publish what changed (everything, for a new writer) if this checker holds the
        writer lease; then log the state changes it makes, evaluating the view only when
        a verdict may have changed (:class:`shared.keeper.ViewKeeper`)."""
        if self.fence is None:
            return
        now = self.clock()
        heartbeat = CheckerHeartbeat(self.checker_id, now, fence=self.fence)
        if self._taking_over:
            await self._carry_on_ejections()
        observations = dict(self.observations)
        last_heartbeat_at = self.last_published_at
        if self._full_publish:  # a new writer, or Redis was gone: the store's is the last
            stored = await self.store.read_heartbeat()
            if stored is not None and (last_heartbeat_at is None or stored.at > last_heartbeat_at):
                last_heartbeat_at = stored.at
        dirty, self._dirty = self._dirty, set()
        changed = None if self._full_publish else dirty
        try:
            published = await self.store.publish(
                self.config, observations, heartbeat, changed=changed
            )
        except Exception:
            self._dirty |= dirty  # not written: the next publish carries them
            raise
        if published is None:
            self._lose_lease("the store refused the write: a newer writer holds the lease")
            return
        self._full_publish = False
        self.last_published_at = now
        history = outage_events(last_heartbeat_at, now, self.config)
        for event in history:
            log.info("%s", describe(event), extra=event)
        if changed is None:  # a new writer: the config it serves belongs in history (replay)
            history.append(config_event(self.config, now))
        self.drains = await self.store.read_drains()
        held = self.keeper.snapshot
        self.keeper.snapshot = Snapshot(self.config, observations, heartbeat, self.drains)
        before = self.keeper.view
        if self.keeper.refresh(held):
            view = self.keeper.view
            assert view is not None
            for event in view_changes(before, view):
                log.info("%s", describe(event), extra=event)
            history += transitions(before, view)
        await self._record_history(history, observations, now)

    async def _record_history(
        self, events: list[dict[str, Any]], observations: dict[str, MemberObservation], now: float
    ) -> None:
        """Keep the transitions, and each member's full record at most once per
        ``history.observation_interval``; trim by age once a minute. History is for
        people: failing to write it is logged and never stops publishing."""
        settings = self.config.history
        for name in due_observations(
            observations, self._history_kept, now, settings.observation_interval
        ):
            events.append(observation_event(observations[name]))
            self._history_kept[name] = now
        trim = now - self._history_trimmed_at >= 60
        try:
            await self.store.append_history(
                events, settings.max_entries, settings.max_age if trim else None
            )
        except Exception as exc:
            log.warning("cannot write history: %s", exc)
            return
        if trim:
            self._history_trimmed_at = now

    async def _carry_on_ejections(self) -> None:
        """A new writer carries on the ejections the last one published, ongoing or past
        (the cap and the ejections in a row were judged from those); its own unpublished
        ones are dropped. Nothing published yet, or unreadable: it keeps its own."""
        self._taking_over = False
        try:
            published = await self.store.read()
        except Exception as exc:  # another schema, say: the records are not ours to read
            log.warning("cannot read the records published before: %s", exc)
            return
        if published is None:
            return
        now = self.clock()
        for name, obs in self.observations.items():
            last = published.observations.get(name)
            outcomes = carried_on(obs.outcomes, last.outcomes if last else None)
            if outcomes != obs.outcomes:
                self.observations[name] = replace(obs, outcomes=outcomes)
                self._dirty.add(name)
            if is_ejected(outcomes, now):
                self._contenders.add(name)

    def _lose_lease(self, why: str) -> None:
        if self.fence is not None:
            log.warning(
                "checker %s is no longer the writer (%s); standing by",
                self.checker_id,
                why,
                extra={"event": "lease_lost", "fence": self.fence},
            )
        self.fence = None

    async def lease_loop(self) -> None:
        """Hold the writer lease (take it when free, renew it when ours) every lease/3."""
        lease = self.config.lease_seconds
        while True:
            try:
                fence = await self.store.hold_lease(self.checker_id, lease)
            except Exception as exc:  # Redis down: keep the token; a write will be fenced
                log.warning("cannot renew the writer lease: %s", exc)
            else:
                if fence is None:
                    self._lose_lease("another checker holds the lease")
                elif fence != self.fence:
                    log.info(
                        "checker %s is the writer now (fence %d)",
                        self.checker_id,
                        fence,
                        extra={"event": "lease_acquired", "fence": fence},
                    )
                    self.fence = fence
                    self._full_publish = True
                    self._taking_over = True
                    self._changed.set()  # publish at once
            await asyncio.sleep(lease / 3)

    async def publisher_loop(self) -> None:
        """Publish now, then after every change, and at least once a period (heartbeat);
        publishes are PUBLISH_INTERVAL apart at least, so changes that come together go
        out together."""
        period = self.config.check.period
        # The first snapshot routers see has an observation of every member (the first
        # round is bounded by one period, see fetch_parsed's deadline), unless the
        # federation is too large to check in one period: then what is there after one.
        first_round_ends = time.monotonic() + period
        while len(self.observations) < len(self.config.members):
            left = first_round_ends - time.monotonic()
            if left <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=left)
        while True:
            self._changed.clear()
            self._urgent.clear()
            started = time.monotonic()
            try:
                await self.publish()
            except Exception as exc:  # Redis down: keep checking, publish when it returns
                log.warning("publishing to the store failed: %s", exc)
                self._full_publish = True  # Redis may come back empty
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=period)
            # Routine changes wait out the interval; one that can move a state ends the wait.
            routine = started + PUBLISH_INTERVAL - time.monotonic()
            if routine > 0 and not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), timeout=routine)
            await asyncio.sleep(max(0.0, started + URGENT_SPACING - time.monotonic()))

    async def run(self) -> None:
        """Check every member forever; publish while this checker holds the writer lease.

        Standby checkers keep checking too (hot standby), so a takeover publishes fresh
        observations at once.
        """
        async with self.clients:
            tasks = [
                asyncio.create_task(self.lease_loop()),
                asyncio.create_task(self.publisher_loop()),
                *(asyncio.create_task(self.member_loop(n)) for n in self.config.members),
            ]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                if self.fence is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(
                            self.store.release_lease(self.checker_id, self.fence), 1.0
                        )


def _parse_versions(answer: Answer) -> dict[str, str]:
    return parse_versions(answer.status, answer.body)


def _parse_metrics(answer: Answer) -> LaunchTotals:
    if answer.status != 200:
        raise PayloadError(f"metrics answered HTTP {answer.status}")
    try:
        text = answer.body.decode()
    except UnicodeDecodeError:
        raise PayloadError("metrics body is not UTF-8") from None
    try:
        return launch_totals(text)
    except ValueError as exc:
        raise PayloadError(str(exc)) from None
    except Exception as exc:  # the parser's own bug must not cost the round its other checks
        raise PayloadError(f"metrics cannot be parsed: {type(exc).__name__}") from None


def _error(outcomes: LaunchOutcomes | None) -> str | None:
    return outcomes.error if outcomes else None


async def _nothing() -> None:
    """What a fetch that is not due this round gives."""


def _health_from(outcome: Outcome[HealthObservation], now: float) -> HealthObservation:
    if outcome.value is not None:
        return outcome.value
    return health_failure(outcome.error or "unknown error", outcome.transport, now)
