"""The checker process: poll every member, publish what changed to the store.

Each member has its own loop (a slow member never delays another's checks), with its own
connection pool (see checker.pool). What the checks observe is published by the writer
side it inherits (checker.publisher). The thinking is in ``shared``: this module only moves
data.
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
from checker.publisher import Publisher
from shared.config import FederationConfig, MemberConfig
from shared.observe import HealthStreak, health_failure, health_is_failing, next_observation
from shared.outcomes import LaunchTotals, Sample, judge_read, launch_totals, slide
from shared.payloads import PayloadError, parse_health, parse_versions
from shared.records import HealthObservation, LaunchOutcomes
from shared.rules import state_may_change
from shared.schedule import (
    READS,
    CheckKind,
    after_check,
    brings_health_forward,
    is_falling,
    next_check,
    retry_window,
    round_plan,
)
from shared.store import Store

log = logging.getLogger("fedredirect.checker")


class Checker(Publisher):
    def __init__(
        self,
        config: FederationConfig,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        checker_id: str | None = None,
    ) -> None:
        super().__init__(
            config,
            store,
            clock=clock,
            checker_id=checker_id or f"{socket.gethostname()}:{os.getpid()}",
        )
        self.rng = rng or random.Random()
        self.streaks: dict[str, HealthStreak] = {}  # flap damping's state: never published
        self.metrics = CheckerMetrics(self.published, lambda: self.last_published_at)
        self._next_health: dict[str, float] = {}
        # An idle connection outlives the wait for its member's next check, so each check
        # reuses it instead of opening a new one (a TLS handshake, for real members).
        self.clients = OriginClients(keepalive=3 * config.check.period + 5)
        # Each member's launch totals over the outcomes window (never published).
        self.launch_samples: dict[str, tuple[Sample, ...]] = {}
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

    async def check_member(self, name: str, kind: CheckKind = "whole") -> bool:
        """One check of a member, reading what ``kind`` names (shared.schedule.READS; its
        /health only when due, /metrics only when read). Returns whether it read /versions
        and reached nobody (refused, reset, timed out)."""
        member = self.config.members[name]
        check = self.config.check
        mono = time.monotonic()
        deadline = mono + retry_window(check, self.observations.get(name))
        reads = READS[kind]
        health_due = "health" in reads and mono >= self._next_health.get(name, 0.0)
        metrics_url = self.metrics_url(name) if "metrics" in reads else None
        if not (health_due or metrics_url or "versions" in reads):
            return False  # a round of a member waiting failed_period, its metrics not read
        health_outcome, versions_outcome, metrics_outcome = await asyncio.gather(
            self._fetch_health(member, deadline) if health_due else _nothing(),
            self._fetch_versions(member, deadline) if "versions" in reads else _nothing(),
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
        return versions_outcome is not None and versions_outcome.transport

    def _record_metrics(self, member: str, endpoint: str, outcome: Outcome[Any]) -> None:
        self.metrics.check_duration.labels(member, endpoint).observe(outcome.duration)
        reason: str | None = outcome.kind
        if isinstance(outcome.value, HealthObservation) and outcome.value.status == "unhealthy":
            reason = "member_unhealthy"
        if reason is not None:
            self.metrics.check_failures.labels(member, endpoint, reason).inc()

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
        if outcome.value is not None:
            sample = Sample(now, outcome.value)
            samples = self.launch_samples.get(name, ())
            self.launch_samples[name] = slide(samples, sample, self.config.outcomes_window)
        previous = {n: self.observations[n].outcomes for n in {name} | self._contenders}
        read = (name, outcome.error)
        judgement = judge_read(self.config, read, self.launch_samples, previous, now)
        self._contenders = set(judgement.contenders)
        for n, outcomes in judgement.outcomes.items():
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
        """Check one member as shared.schedule plans: everything at once first, then a
        round every period (± jitter), start to start, so a slow check does not push the
        next one later and members keep the phases their first checks had (a large
        federation's checks stay spread over the period instead of coming in waves), and
        /versions alone midway between rounds; /health alone every fast interval while the
        member is falling, or at once after a /versions that reached nobody. One check at a
        time: the next starts once this one has ended."""
        check = self.config.check
        kind: CheckKind = "whole"
        while True:
            started = time.monotonic()
            if kind in ("whole", "round"):
                jitter = self.rng.uniform(-check.jitter, check.jitter)
                plan = round_plan(started, started + check.period * (1 + jitter))
            unreached = False
            try:
                unreached = await self.check_member(name, kind)
            except Exception:  # a bug here must not stop the other members' checks
                log.exception("check of member %s failed unexpectedly", name)
            obs = self.observations.get(name)
            falling = is_falling(obs, self.streaks.get(name, HealthStreak()))
            health_now = brings_health_forward(obs, unreached)
            plan = after_check(check, plan, kind, started, falling=falling, health_now=health_now)
            upcoming = next_check(plan)
            kind = upcoming.kind
            await asyncio.sleep(max(0.0, upcoming.at - time.monotonic()))

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


async def _nothing() -> None:
    """What a fetch that is not due this round gives."""


def _health_from(outcome: Outcome[HealthObservation], now: float) -> HealthObservation:
    if outcome.value is not None:
        return outcome.value
    return health_failure(outcome.error or "unknown error", outcome.transport, now)
