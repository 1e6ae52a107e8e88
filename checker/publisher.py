"""The checker's writer side: hold the writer lease and publish the members' records.

What changed goes out coalesced (at most once per PUBLISH_INTERVAL, at once when it can move
a state) and everything at least once a period as the heartbeat, each record stamped with
the start of its member's slow start as the view of those records finds it; then the state
changes the published records make are logged and kept in history. The checking is in
checker.service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shared.changes import view_changes
from shared.config import FederationConfig
from shared.evaluate import View
from shared.history import (
    config_event,
    describe,
    due_observations,
    observation_event,
    outage_events,
    transitions,
)
from shared.keeper import ViewKeeper
from shared.outcomes import carried_on, is_ejected
from shared.records import CheckerHeartbeat, Drain, MemberObservation
from shared.slowstart import in_rotation, next_eligible_since
from shared.store import Snapshot, Store

log = logging.getLogger("fedredirect.checker")

#: Routine publishes (records that changed only in their check time, or in pod counts that
#: move no state) are at least this far apart (seconds), so results that finish together go
#: out in one write.
PUBLISH_INTERVAL = 0.1
#: A change that can move a member's state goes out at once, but publishes are never closer
#: than this, so a burst of them is still coalesced.
URGENT_SPACING = 0.01


class Publisher:
    """The records a checker publishes and the lease it publishes them under. The checker
    (checker.service.Checker) writes ``observations``, adds the members it changed to
    ``_dirty`` and sets ``_changed`` (``_urgent`` too when a state may move)."""

    def __init__(
        self,
        config: FederationConfig,
        store: Store,
        *,
        clock: Callable[[], float],
        checker_id: str,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.checker_id = checker_id
        self.observations: dict[str, MemberObservation] = {}
        # The view of the records this checker publishes, evaluated only when a verdict may
        # have changed: it stamps their slow starts, and is logged and kept in history once
        # they are published (``_published``: for its metrics too).
        self.keeper = ViewKeeper(clock)
        self._published: tuple[View, Snapshot] | None = None
        # Each member's eligible_since as this checker last published it, or as the records
        # it took over said: where a slow start goes on from (a member not in it is new).
        self._published_since: dict[str, float | None] = {}
        self.drains: dict[str, Drain] = {}
        self.last_published_at: float | None = None
        self.fence: int | None = None  # the writer lease's fencing token while we hold it
        self._changed = asyncio.Event()
        self._urgent = asyncio.Event()  # a change that can move a state waits to be published
        self._dirty: set[str] = set()  # members whose records changed since the last publish
        self._full_publish = True  # the next publish rewrites everything (new writer)
        self._history_kept: dict[str, float] = {}  # member -> when its record was last kept
        self._history_trimmed_at = 0.0
        # The members the next judgement of launches must see besides the one read: those
        # ejected or qualifying, so a judgement costs the same however large the federation.
        # The checker's judgements keep it; a takeover adds the ejections it carries on.
        self._contenders: set[str] = set()
        self._taking_over = False  # a new lease: carry on what was last published

    def current_view(self) -> View | None:
        """The view of what this checker last published (for metrics). None on a standby:
        only the writer exports the view, so a former writer's frozen view cannot keep an
        alert firing."""
        published = self.published()
        return published[0] if published else None

    def published(self) -> tuple[View, Snapshot] | None:
        """The view of what this checker last published and those records, while it is
        the writer (None on a standby)."""
        return self._published if self.fence is not None else None

    async def publish(self) -> None:
        """Publish what changed (everything, for a new writer) if this checker holds the
        writer lease, stamped with their slow starts (:meth:`_stamped`); then log the state
        changes it makes. The view is evaluated only when a verdict may have changed
        (:class:`shared.keeper.ViewKeeper`)."""
        if self.fence is None:
            return
        now = self.clock()
        heartbeat = CheckerHeartbeat(self.checker_id, now, fence=self.fence)
        if self._taking_over:
            await self._carry_on()
        last_heartbeat_at = self.last_published_at
        if self._full_publish:  # a new writer, or Redis was gone: the store's is the last
            stored = await self.store.read_heartbeat()
            if stored is not None and (last_heartbeat_at is None or stored.at > last_heartbeat_at):
                last_heartbeat_at = stored.at
        self.drains = await self.store.read_drains()
        snapshot = self._stamped(
            Snapshot(self.config, dict(self.observations), heartbeat, self.drains)
        )
        observations = snapshot.observations
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
        self._published_since.update((n, o.eligible_since) for n, o in observations.items())
        history = outage_events(last_heartbeat_at, now, self.config)
        for event in history:
            log.info("%s", describe(event), extra=event)
        if changed is None:  # a new writer: the config it serves belongs in history (replay)
            history.append(config_event(self.config, now))
        view = self.keeper.view
        assert view is not None
        before = self._published[0] if self._published else None
        if view is not before:
            for event in view_changes(before, view):
                log.info("%s", describe(event), extra=event)
            history += transitions(before, view)
        self._published = view, snapshot
        await self._record_history(history, observations, now)

    def _stamped(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` with each record's ``eligible_since`` as the view of its records
        finds it (:func:`shared.slowstart.next_eligible_since`), the keeper holding the view
        of what it returns. The checker publishes the start, so every router ramps a member
        alike, and no router's start or reload can start a ramp. Eligibility moves only
        with the view, so the records are gone through only when it was evaluated, or for
        a new writer (whose ``_published_since`` was read from the store)."""
        held = self.keeper.snapshot
        self.keeper.snapshot = snapshot
        evaluated = self.keeper.refresh(held)
        view = self.keeper.view
        if view is None or not (evaluated or self._full_publish):
            return snapshot
        assert snapshot.heartbeat is not None
        now, published = snapshot.heartbeat.at, self._published_since
        observations = dict(snapshot.observations)  # the keeper holds the one it was given
        for name, obs in snapshot.observations.items():
            member = view.member(name)
            eligible = member is not None and in_rotation(member.excluded_by)
            since = next_eligible_since(published.get(name), name in published, eligible, now)
            if since != obs.eligible_since:
                observations[name] = self.observations[name] = replace(obs, eligible_since=since)
                self._dirty.add(name)
        if all(observations[n] is o for n, o in snapshot.observations.items()):
            return snapshot
        stamped = replace(snapshot, observations=observations)
        self.keeper.snapshot = stamped
        self.keeper.refresh(snapshot)  # a new eligible_since moves a weight: evaluated again
        return stamped

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

    async def _carry_on(self) -> None:
        """A new writer carries on what the last one published: the ejections, ongoing or
        past (the cap and the ejections in a row were judged from those; its own
        unpublished ones are dropped), and each member's ``eligible_since``, so neither a
        takeover nor a restart (a config reload) starts a slow start, and a member new to
        the config starts one. Nothing published yet: every member is new. Unreadable: it
        keeps its own."""
        self._taking_over = False
        try:
            published = await self.store.read()
        except Exception as exc:  # another schema, say: the records are not ours to read
            log.warning("cannot read the records published before: %s", exc)
            return
        if published is None:
            self._published_since = {}
            return
        self._published_since = {n: o.eligible_since for n, o in published.observations.items()}
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
