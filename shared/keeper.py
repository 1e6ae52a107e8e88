"""The view of the latest records, evaluated only when a verdict may have changed.

A router (the records it reads) and the checker (the records it publishes) both hold one:
they evaluate on a read that can move a state, when the records' freshness deadline
(:mod:`shared.deadline`) has passed, or when the outage deadline has; a record refreshed
with the same content only moves the deadline. No I/O: the caller hands in each snapshot.

A router also counts its own launches against the members' free pods
(:mod:`shared.capacity`): its keeper is given them (:data:`LaunchesSince`) and evaluates
with them; a newer report that starts again the count of a member the router counted
full is a change, and so is the router's own launch that uses up a member's room
(:meth:`ViewKeeper.reevaluate`). Where nothing else moved, only those members are judged
again (:func:`rejudge`): a large federation's router does not evaluate it all each time a
member's room runs out or its count restarts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from shared.capacity import NO_LAUNCHES, SentLaunches
from shared.deadline import freshness, next_deadline, outage_deadline, record_deadline
from shared.evaluate import Limits, View, age, gating_leaves_nobody, launch_targets, member_view
from shared.rules import heartbeat_too_old, judged_at, state_may_change
from shared.store import Snapshot

#: A router's launches since each member's last report, brought up to date with the
#: snapshot read (the second) after the one held (the first, None: none yet): those
#: launches, and the members whose count started again while the router counted them full
#: (its view holds them full by launches that a newer report now holds).
LaunchesSince = Callable[[Snapshot | None, Snapshot], tuple[SentLaunches, frozenset[str]]]


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
        it evaluated (the members whose count restarted alone, when only they moved)."""
        snap = self.snapshot
        if snap is None:
            return False
        now = self.clock()
        counted = self.launches_since
        sent, restarted = (NO_LAUNCHES, frozenset()) if counted is None else counted(held, snap)
        if held is None or self.view is None or not self._judged_alike(held, snap, now):
            self._evaluate(snap, now, sent)
        elif restarted:
            self._rejudge(snap, now, sent, restarted)
        else:
            return False
        return True

    def reevaluate(self, members: frozenset[str] | None = None) -> None:
        """Evaluate the snapshot held now, with the launches sent since its reports: they
        moved what no record shows (a launch used up the room of ``members``; None: the
        number of routers changed, which moves every room)."""
        snap = self.snapshot
        if snap is None:
            return
        counted = self.launches_since
        sent = NO_LAUNCHES if counted is None else counted(snap, snap)[0]
        now = self.clock()
        if members is None or self.view is None or not self._judged_alike(snap, snap, now):
            self._evaluate(snap, now, sent)
        else:
            self._rejudge(snap, now, sent, members)

    def _evaluate(self, snap: Snapshot, now: float, sent: SentLaunches) -> None:
        self.view = snap.evaluate(now, sent)
        self.evaluations += 1
        self.as_of = judged_at(snap.config, snap.heartbeat, now)
        self.deadline = next_deadline(snap.config, snap.observations, self.as_of)

    def _rejudge(
        self, snap: Snapshot, now: float, sent: SentLaunches, members: frozenset[str]
    ) -> None:
        """Judge only ``members`` again (their launches moved, nothing else did), or all."""
        assert self.view is not None
        view = rejudge(self.view, snap, sent, members, now)
        if view is None:
            self._evaluate(snap, now, sent)
        else:
            self.view = view
            self.evaluations += 1

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


def rejudge(
    view: View, snap: Snapshot, sent: SentLaunches, members: frozenset[str], now: float
) -> View | None:
    """``view`` with ``members`` judged again at ``now`` from ``snap`` with the launches
    ``sent``, every other member as ``view`` holds it: what evaluating ``snap`` whole gives
    when only those members' launches moved since ``view`` and its other verdicts still
    hold (:meth:`ViewKeeper._judged_alike`), for the cost of those members alone. None when
    more than they may move: gating suspended, an outage, or gating now leaving nobody."""
    config = snap.config
    if view.gate_suspended or view.outage_active or config is not view.config:
        return None
    as_of = judged_at(config, snap.heartbeat, now)
    limits, reference = Limits.of(config), view.reference
    observed, drained, pending = snap.observations.get, snap.drains.get, sent.pending
    judged = tuple(
        [
            member_view(
                m.name,
                config.members[m.name],
                observed(m.name),
                drained(m.name),
                reference,
                limits,
                as_of,
                True,
                pending(m.name),
            )
            if m.name in members
            else m
            for m in view.members
        ]
    )
    if gating_leaves_nobody(judged):
        return None
    targets, fallback_reason = launch_targets(config.fallback_policy, judged)
    return replace(
        view,
        evaluated_at=now,
        members=judged,
        reference=replace(reference, age=age(now, reference.observed_at)),
        fallback_active=fallback_reason is not None,
        fallback_reason=fallback_reason,
        targets=targets,
        heartbeat=snap.heartbeat,
    )
