"""The view of the latest records, evaluated only when a verdict may have changed.

A router (the records it reads) and the checker (the records it publishes) both hold one:
they evaluate on a read that can move a state, when the records' freshness deadline
(:mod:`shared.deadline`) has passed, or when the outage deadline has; a record refreshed
with the same content only moves the deadline. No I/O: the caller hands in each snapshot.

A router also counts its own launches against the members' free pods
(:mod:`shared.capacity`): its keeper is given them (:data:`LaunchesSince`) and evaluates
with them; a newer report that starts again the count of a member the router counted
full is a change, and so is the router's own launch that uses up a member's room
(:meth:`ViewKeeper.reevaluate`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from shared.capacity import NO_LAUNCHES, SentLaunches
from shared.deadline import freshness, next_deadline, outage_deadline, record_deadline
from shared.evaluate import View
from shared.rules import heartbeat_too_old, judged_at, state_may_change
from shared.store import Snapshot

#: A router's launches since each member's last report, brought up to date with the
#: snapshot read (the second) after the one held (the first, None: none yet): those
#: launches, and whether a count started again for a member the router counted full (its
#: view holds it full by launches that a newer report now holds).
LaunchesSince = Callable[[Snapshot | None, Snapshot], tuple[SentLaunches, bool]]


class ViewKeeper:
    """The snapshot held, the view evaluated from it, and when to evaluate again."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        launches_since: LaunchesSince | None = None,
    ) -> None:
        self.clock = clock
        self.launches_since = launches_since  # None (the checker's): no launches of its own
        self.snapshot: Snapshot | None = None
        self.view: View | None = None
        self.evaluations = 0  # since this process started
        # The instant the records held were last judged at (the view's, or a later one at
        # which they were found to judge alike) and the next at which one may judge apart.
        self.as_of = -math.inf
        self.deadline = -math.inf

    def refresh(self, held: Snapshot | None) -> bool:
        """Evaluate the snapshot now held, which replaced ``held``, unless its view would be
        the view held: only records' times changed and no deadline has passed. True when
        it evaluated."""
        snap = self.snapshot
        if snap is None:
            return False
        now = self.clock()
        counted = self.launches_since
        sent, restarted = (NO_LAUNCHES, False) if counted is None else counted(held, snap)
        if (
            not restarted
            and held is not None
            and self.view is not None
            and self._judged_alike(held, snap, now)
        ):
            return False
        self._evaluate(snap, now, sent)
        return True

    def reevaluate(self) -> None:
        """Evaluate the snapshot held now, with the launches sent since its reports: they
        moved what no record shows (a launch used up a member's room, or the number of
        routers changed)."""
        snap = self.snapshot
        if snap is not None:
            counted = self.launches_since
            sent = NO_LAUNCHES if counted is None else counted(snap, snap)[0]
            self._evaluate(snap, self.clock(), sent)

    def _evaluate(self, snap: Snapshot, now: float, sent: SentLaunches) -> None:
        self.view = snap.evaluate(now, sent)
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
        """The wall-clock instant at which the view may change with no new snapshot: the
        outage deadline, or the records' own deadline while they are judged by the wall
        clock."""
        snap, view = self.snapshot, self.view
        if snap is None or view is None:
            return math.inf
        if snap.heartbeat is None or (view.outage_active and snap.config.outage.policy == "all"):
            return self.deadline  # records judged by the wall clock (see judged_at)
        if view.outage_active:
            return math.inf  # `keep`: nothing moves until a new heartbeat
        return outage_deadline(snap.config, snap.heartbeat)


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
