"""The router's in-memory view, kept in sync with the store in the background.

Requests never touch Redis: they read ``holder.view``, which a background task replaces
when the store announces a new generation (pub/sub, plus polling as a safety net) and
re-evaluates on a short timer so that ages and staleness move with the clock (in a thread,
so that the event loop goes on serving meanwhile). An announcement that follows the
snapshot held is applied by reading just the members it names; anything else (a gap, a new
config, a whole rewrite) is a full read. When the store cannot be read, the last good
snapshot is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from shared.evaluate import View, evaluate, state_may_change
from shared.store import Change, Snapshot, Store

log = logging.getLogger("fedredirect.router")


class SnapshotHolder:
    def __init__(
        self,
        store: Store,
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
        self.started_at = clock()

    def reevaluate(self) -> None:
        view = self.evaluated()
        if view is not None:
            self.view = view

    def evaluated(self) -> View | None:
        """The view of the snapshot held, now (None without a snapshot)."""
        snap = self.snapshot
        if snap is None:
            return None
        return evaluate(snap.config, snap.observations, snap.drains, snap.heartbeat, self.clock())

    async def sync_once(self, change: Change | None = None) -> bool:
        """Bring the snapshot up to date: apply ``change`` if it follows the snapshot held,
        else read everything if the store's generation moved. True when something new was
        loaded."""
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

    async def run(self) -> None:
        """Forever: wait for a notification or the poll interval, sync, re-evaluate: at once
        when what was read can move a state, else once the poll interval has passed."""
        pubsub: Any = None
        evaluated_at = -math.inf  # time.monotonic() of the last evaluation
        while True:
            held = self.snapshot
            try:
                if pubsub is None:
                    pubsub = self.store.client.pubsub()
                    await pubsub.subscribe(self.store.channel)
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self.poll_interval
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
                await asyncio.sleep(self.poll_interval)
            due = time.monotonic() - evaluated_at >= self.poll_interval
            if self.snapshot is not None and (due or may_move_a_state(held, self.snapshot)):
                evaluated_at = time.monotonic()
                # In a thread: a large federation's evaluation (8 ms at 1,000 members) then
                # only slows the redirects it overlaps (turns at the GIL), never stops them.
                view = await asyncio.to_thread(self.evaluated)
                if view is not None:
                    self.view = view

    def view_age(self) -> float | None:
        return None if self.synced_at is None else max(0.0, self.clock() - self.synced_at)

    def max_view_age(self) -> float:
        """How old the view may get before this router calls itself unhealthy."""
        if self.snapshot is None:
            return 30.0
        return max(5.0, 3 * self.snapshot.config.check.period)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """The router's own health: fresh view or not, with the reason."""
        age = self.view_age()
        body: dict[str, Any] = {
            "view_age_seconds": age,
            "max_view_age_seconds": self.max_view_age(),
            "store_error": self.sync_error,
            "generation": self.snapshot.generation if self.snapshot else None,
            "checker_heartbeat_age_seconds": self.view.heartbeat_age if self.view else None,
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
    the passing of time: another config, drains or heartbeat writer, or a member record that
    changed in more than its check time (``shared.evaluate.state_may_change``). Records a
    read did not touch are the same objects, so only those it replaced are compared."""
    if held is None or read.config_hash != held.config_hash or read.config is not held.config:
        return True
    if read.drains != held.drains:
        return True
    if (read.heartbeat is None) != (held.heartbeat is None):
        return True
    headroom = read.config.pod_headroom
    return any(
        state_may_change(held.observations.get(name), obs, headroom)
        for name, obs in read.observations.items()
        if obs is not held.observations.get(name)
    ) or len(read.observations) != len(held.observations)
