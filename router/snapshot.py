"""The router's in-memory view, kept in sync with the store in the background.

Requests never touch Redis: they read ``holder.view``, which a background task replaces
when the store announces a new generation (pub/sub, plus polling as a safety net). An
announcement that follows the snapshot held is applied by reading just the members it
names; anything else (a gap, a new config, a whole rewrite) is a full read. When the store
cannot be read, the last good snapshot is kept.

The view is evaluated only when a verdict may have changed: a read that can move a state,
a new heartbeat reaching the deadline of the records held (:mod:`shared.deadline`), or the
wall clock reaching the outage deadline. A record refreshed with the same content only
moves the deadline. Pages measure ages against the latest records when they are asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from shared.deadline import freshness, next_deadline, outage_deadline, record_deadline
from shared.evaluate import View, evaluate, heartbeat_too_old, judged_at, state_may_change
from shared.store import Change, Snapshot, Store

log = logging.getLogger("fedredirect.router")


class SnapshotHolder:
    """The latest snapshot read, the view evaluated from it, and when to evaluate again.

    ``store`` None: a holder of a snapshot given by hand (:meth:`load`), that never syncs."""

    def __init__(
        self,
        store: Store | None,
        *,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self.clock = clock
        self.snapshot: Snapshot | None = None
        self.view: View | None = None
        self.synced_at: float | None = None  # last successful read of the store
        self.sync_error: str | None = None
        self.evaluations = 0  # since this process started: fedredirect_router_evaluations
        # The instant the records held were last judged at (the view's, or a later one at
        # which they were found to judge alike) and the next at which one may judge apart.
        self.as_of = -math.inf
        self.deadline = -math.inf

    def load(self, snapshot: Snapshot) -> None:
        """Hold ``snapshot`` as if just read from the store, evaluating if it needs to be."""
        held, self.snapshot = self.snapshot, snapshot
        self.synced_at = self.clock()
        self.refresh(held)

    def refresh(self, held: Snapshot | None) -> None:
        """Evaluate the snapshot now held, read after ``held``, unless its view would be the
        view held: only records' times changed and no deadline has passed."""
        snap = self.snapshot
        if snap is None:
            return
        now = self.clock()
        if held is None or self.view is None or not self._judged_alike(held, snap, now):
            self.view = evaluate(snap.config, snap.observations, snap.drains, snap.heartbeat, now)
            self.evaluations += 1
            self.as_of = judged_at(snap.config, snap.heartbeat, now)
            self.deadline = next_deadline(snap.config, snap.observations, self.as_of)

    def _judged_alike(self, held: Snapshot, read: Snapshot, now: float) -> bool:
        """Whether ``read`` evaluated ``now`` gives the view held (evaluated from ``held``'s
        content); moves the deadline as refreshed records allow."""
        assert self.view is not None
        if may_move_a_state(held, read):
            return False
        config = read.config
        if heartbeat_too_old(config, read.heartbeat, now) != self.view.outage_active:
            return False
        as_of = judged_at(config, read.heartbeat, now)
        if as_of < self.as_of:  # a clock gone back: the rules only hold going forward
            return False
        replaced_only = as_of < self.deadline  # records not replaced judge as before
        deadline = self.deadline if replaced_only else math.inf
        old_as_of, get = self.as_of, held.observations.get
        for name, obs in read.observations.items():
            old = get(name)
            if replaced_only and obs is old:
                continue
            if freshness(config, old, old_as_of) != freshness(config, obs, as_of):
                return False
            deadline = min(deadline, record_deadline(config, obs, as_of))
        self.as_of, self.deadline = as_of, deadline
        return True

    def wake_at(self) -> float:
        """The wall-clock instant at which the view may change with no new read: the outage
        deadline, or the records' own deadline while they are judged by the wall clock."""
        snap, view = self.snapshot, self.view
        if snap is None or view is None:
            return math.inf
        if snap.heartbeat is None or (view.outage_active and snap.config.outage.policy == "all"):
            return self.deadline  # records judged by the wall clock (see judged_at)
        if view.outage_active:
            return math.inf  # `keep`: nothing moves until a new heartbeat
        return outage_deadline(snap.config, snap.heartbeat)

    async def sync_once(self, change: Change | None = None) -> bool:
        """Bring the snapshot up to date: apply ``change`` if it follows the snapshot held,
        else read everything if the store's generation moved. True when something new was
        loaded. Does not evaluate (see :meth:`refresh`)."""
        assert self.store is not None
        if change is not None and self.snapshot is not None:
            updated = await self.store.read_change(self.snapshot, change)
            if updated is not None:
                self.snapshot = updated
                self.synced_at = self.clock()
                return True
        generation = await self.store.generation()
        if self.snapshot is not None and generation == self.snapshot.generation:
            self.synced_at = self.clock()
            return False
        snapshot = await self.store.read()
        if snapshot is None:
            if self.snapshot is not None:  # e.g. Redis restarted empty: keep what we have
                raise LookupError("the store holds no snapshot (restarted empty?)")
            return False
        self.snapshot = snapshot
        self.synced_at = self.clock()
        return True

    def _timeout(self) -> float:
        """How long to wait for a message: the poll interval, or less to meet a deadline."""
        remaining = self.wake_at() - self.clock()
        return max(0.001, min(self.poll_interval, remaining))

    async def run(self) -> None:
        """Forever: wait for a notification, the poll interval or a deadline; sync; evaluate
        if a verdict may have changed (:meth:`refresh`), inline: that is rare."""
        assert self.store is not None
        pubsub: Any = None
        while True:
            held = self.snapshot
            try:
                if pubsub is None:
                    pubsub = self.store.client.pubsub()
                    await pubsub.subscribe(self.store.channel)
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self._timeout()
                )
                await self.sync_once(Change.parse(message["data"]) if message else None)
                if self.sync_error is not None:
                    log.info("store reachable again; view resynced")
                self.sync_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.sync_error is None:
                    log.warning("cannot read the store, serving the last view: %s", exc)
                self.sync_error = f"{type(exc).__name__}: {exc}"
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                pubsub = None
                await asyncio.sleep(self._timeout())
            self.refresh(held)

    def view_age(self) -> float | None:
        return None if self.synced_at is None else max(0.0, self.clock() - self.synced_at)

    def max_view_age(self) -> float:
        """How old the view may get before this router calls itself unhealthy."""
        if self.snapshot is None:
            return 30.0
        return max(5.0, 3 * self.snapshot.config.check.period)

    def heartbeat_age(self) -> float | None:
        """Seconds since the latest checker heartbeat read (None: none)."""
        heartbeat = self.snapshot.heartbeat if self.snapshot else None
        return None if heartbeat is None else max(0.0, self.clock() - heartbeat.at)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """The router's own health: fresh view or not, with the reason."""
        age = self.view_age()
        body: dict[str, Any] = {
            "view_age_seconds": age,
            "max_view_age_seconds": self.max_view_age(),
            "store_error": self.sync_error,
            "generation": self.snapshot.generation if self.snapshot else None,
            "checker_heartbeat_age_seconds": self.heartbeat_age() if self.view else None,
        }
        if self.view is None:
            body["reason"] = self.sync_error or "no snapshot in the store yet (is the checker up?)"
            return False, body
        if age is None or age > self.max_view_age():
            body["reason"] = f"view not refreshed for {age or 0:.0f}s: {self.sync_error}"
            return False, body
        body["reason"] = None
        return True, body


def may_move_a_state(held: Snapshot | None, read: Snapshot) -> bool:
    """Whether the snapshot ``read`` may evaluate differently from ``held`` other than by
    the passing of time: another config, drains or heartbeat writer, another set of
    members, or a member record that changed in more than its times
    (``shared.evaluate.state_may_change``). Records a read did not touch are the same
    objects, so only those it replaced are compared."""
    if held is None:
        return True
    if read.config_hash != held.config_hash:
        return True
    if read.config is not held.config and read.config != held.config:  # a full read: a copy
        return True
    if read.drains != held.drains or _writer(read) != _writer(held):
        return True
    if read.observations.keys() != held.observations.keys():
        return True
    headroom = read.config.pod_headroom
    get = held.observations.get
    return any(
        state_may_change(old, obs, headroom)
        for name, obs in read.observations.items()
        if obs is not (old := get(name))
    )


def _writer(snapshot: Snapshot) -> str | None:
    return None if snapshot.heartbeat is None else snapshot.heartbeat.checker_id
