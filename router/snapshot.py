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
The holder also keeps this router's launches since each member's report
(:mod:`router.sent`), which every evaluation counts against the members' free pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from router.sent import LaunchCounts
from shared.keeper import ViewKeeper
from shared.store import Change, Snapshot, Store

log = logging.getLogger("fedredirect.router")


class SnapshotHolder(ViewKeeper):
    """The latest snapshot read from the store, the view evaluated from it (see
    :class:`shared.keeper.ViewKeeper`: when to evaluate again), and this router's health.

    ``store`` None: a holder of a snapshot given by hand (:meth:`load`), that never syncs."""

    def __init__(
        self,
        store: Store | None,
        *,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.launches = LaunchCounts()
        super().__init__(clock, self.launches.since_reports)
        self.launches.used_up = self.reevaluate
        self.store = store
        self.poll_interval = poll_interval
        self.synced_at: float | None = None  # last successful read of the store
        self.sync_error: str | None = None

    def load(self, snapshot: Snapshot) -> None:
        """Hold ``snapshot`` as if just read from the store, evaluating if it needs to be."""
        held, self.snapshot = self.snapshot, snapshot
        self.synced_at = self.clock()
        self.refresh(held)

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

    async def first_read(self, timeout: float) -> None:
        """Read the store once before serving, so a new replica or a restarted worker answers
        from a view from its first request; a store that cannot be read within ``timeout``
        is left to :meth:`run`, which keeps trying (until then: 503 with the reason)."""
        assert self.store is not None
        held = self.snapshot
        try:
            async with asyncio.timeout(timeout):
                await self.sync_once()
        except TimeoutError:
            self.sync_error = f"the store did not answer in {timeout:g}s"
        except Exception as exc:  # the store's own: run() keeps trying
            self.sync_error = f"{type(exc).__name__}: {exc}"
        if self.sync_error is not None:
            log.warning("serving with no view yet: %s", self.sync_error)
        self.refresh(held)

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
