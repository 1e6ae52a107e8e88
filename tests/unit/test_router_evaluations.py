"""A router evaluates its view only when a verdict may change (router/snapshot.py): a read
that can move a state, a heartbeat reaching the records' deadline, the outage deadline.
A record refreshed with the same content only moves the deadline."""

from __future__ import annotations

import dataclasses
import math

from router.snapshot import SnapshotHolder
from shared.config import FederationConfig, parse_config
from shared.deadline import outage_deadline
from shared.keeper import ViewKeeper
from shared.records import CheckerHeartbeat, Drain, HealthObservation, MemberObservation
from shared.store import Snapshot

T0 = 1_700_000_000.0
PERIOD = 10.0  # record_max_age, versions.max_age and max_staleness 30, min_dwell 20
V1 = {"binderhub": "1.0"}


def config(policy: str = "keep") -> FederationConfig:
    members = {
        n: {"url": f"https://{n}.example.org", "weight": 10, "prime": n == "a"} for n in "ab"
    }
    return parse_config(
        {"check": {"period": PERIOD}, "outage": {"policy": policy}, "members": members}, "test"
    )


def record(name: str, at: float, pods: int = 10) -> MemberObservation:
    health = HealthObservation("ok", (), pods, 100, at)
    return MemberObservation(member=name, checked_at=at, health=health, versions=V1, versions_at=at)


def snapshot(cfg: FederationConfig, at: float, **records: MemberObservation) -> Snapshot:
    """Both members checked at ``at`` (unless given), published with a heartbeat at ``at``."""
    observations = {n: records.get(n) or record(n, at) for n in "ab"}
    return Snapshot(cfg, observations, CheckerHeartbeat("c", at), generation=int(at))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def holder_at(now: float) -> tuple[SnapshotHolder, Clock]:
    clock = Clock(now)
    return SnapshotHolder(None, clock=clock), clock


def test_an_idle_federation_is_evaluated_once() -> None:
    cfg = config()
    holder, clock = holder_at(T0)
    holder.load(snapshot(cfg, T0))
    first = holder.view
    for tick in range(1, 200):  # every member refreshed every period, nothing else changes
        clock.now = T0 + tick * PERIOD
        holder.load(snapshot(cfg, clock.now))
    assert holder.evaluations == 1 and holder.view is first


def test_a_record_that_stops_being_refreshed_goes_stale_at_its_deadline() -> None:
    cfg = config()
    holder, clock = holder_at(T0)
    holder.load(snapshot(cfg, T0))
    silent = record("b", T0)
    for at in (T0 + 10, T0 + 20, T0 + 30):  # b's record is 30s old: not yet stale
        clock.now = at
        holder.load(snapshot(cfg, at, b=silent))
    assert holder.evaluations == 1
    assert holder.deadline == math.nextafter(T0 + 30, math.inf)
    clock.now = T0 + 31
    holder.load(snapshot(cfg, T0 + 31, b=silent))
    assert holder.evaluations == 2
    assert holder.view is not None and holder.view.members[1].state == "stale"
    clock.now = T0 + 40  # stays stale: nothing to evaluate
    holder.load(snapshot(cfg, T0 + 40, b=silent))
    assert holder.evaluations == 2
    clock.now = T0 + 50  # refreshed again with the same content: fresh again, at once
    holder.load(snapshot(cfg, T0 + 50))
    assert holder.evaluations == 3 and holder.view.members[1].state == "eligible"


def test_a_change_of_content_drains_or_writer_is_evaluated_at_once() -> None:
    cfg = config()
    holder, _ = holder_at(T0)
    holder.load(snapshot(cfg, T0))
    full = snapshot(cfg, T0 + 1, b=record("b", T0 + 1, pods=95))
    holder.load(full)
    assert holder.evaluations == 2 and holder.view is not None
    assert holder.view.members[1].state == "full"
    holder.load(dataclasses.replace(full, drains={"a": Drain("a", "", T0)}))
    assert holder.evaluations == 3 and holder.view.members[0].state == "drained"
    other = CheckerHeartbeat("other", T0 + 1)
    holder.load(dataclasses.replace(full, heartbeat=other))
    assert holder.evaluations == 4
    holder.load(dataclasses.replace(full, heartbeat=other, observations={}))
    assert holder.evaluations == 5


def test_a_record_refreshed_with_older_times_brings_the_deadline_forward() -> None:
    cfg = config()
    holder, clock = holder_at(T0)
    holder.load(snapshot(cfg, T0))
    older = record("a", T0 - 5)  # the same content, checked earlier (another clock, say)
    clock.now = T0 + 1
    holder.load(snapshot(cfg, T0 + 1, a=older))
    assert holder.evaluations == 1
    assert holder.deadline == math.nextafter(T0 + 25, math.inf)  # a stale past 30s
    clock.now = T0 + 26
    holder.load(snapshot(cfg, T0 + 26, a=older))
    assert holder.evaluations == 2
    assert holder.view is not None and holder.view.members[0].state == "stale"


def test_a_partial_read_that_refreshes_a_record_with_older_times() -> None:
    """A read of the members a change names keeps the others' records as they were: the one
    it refreshed still sets when the view next changes."""
    cfg = config()
    holder, clock = holder_at(T0)
    holder.load(snapshot(cfg, T0))
    assert holder.snapshot is not None
    kept = holder.snapshot.observations["a"]  # not read again: the same record
    older = record("b", T0 - 5)  # the same content, checked earlier
    clock.now = T0 + 1
    holder.load(snapshot(cfg, T0 + 1, a=kept, b=older))
    assert holder.evaluations == 1
    clock.now = T0 + 26
    holder.load(snapshot(cfg, T0 + 26, a=kept, b=older))
    assert holder.evaluations == 2
    assert holder.view is not None
    assert [m.state for m in holder.view.members] == ["eligible", "stale"]


def test_a_config_read_again_is_evaluated_only_when_it_differs() -> None:
    """Snapshots given by hand carry no config hash: an equal config parsed again is no
    change, another config is evaluated at once."""
    holder, clock = holder_at(T0)
    holder.load(snapshot(config(), T0))
    clock.now = T0 + 1
    holder.load(snapshot(config(), T0 + 1))
    assert holder.evaluations == 1
    other = config("all")
    holder.load(snapshot(other, T0 + 1))
    assert holder.evaluations == 2
    assert holder.view is not None and holder.view.config is other


def test_a_heartbeat_that_goes_back_is_evaluated() -> None:
    cfg = config()
    holder, _ = holder_at(T0)
    holder.load(snapshot(cfg, T0))
    holder.load(snapshot(cfg, T0 - 1))
    assert holder.evaluations == 2


def test_the_outage_takes_effect_at_its_deadline_without_any_read() -> None:
    cfg = config()
    holder, clock = holder_at(T0)
    holder.load(snapshot(cfg, T0))
    deadline = outage_deadline(cfg, holder.snapshot.heartbeat if holder.snapshot else None)
    assert holder.wake_at() == deadline == math.nextafter(T0 + 30, math.inf)
    clock.now = math.nextafter(deadline, -math.inf)
    holder.refresh(holder.snapshot)
    assert holder.evaluations == 1
    clock.now = deadline
    holder.refresh(holder.snapshot)
    assert holder.evaluations == 2 and holder.view is not None and holder.view.outage_active
    assert holder.wake_at() == math.inf  # `keep`: nothing moves until a heartbeat comes
    clock.now = T0 + 1000
    holder.refresh(holder.snapshot)
    assert holder.evaluations == 2
    holder.load(snapshot(cfg, T0 + 1000))  # the checker is back
    assert holder.evaluations == 3 and not holder.view.outage_active


def test_in_an_all_outage_records_go_stale_by_the_wall_clock() -> None:
    cfg = config("all")
    holder, clock = holder_at(T0 + 31)
    holder.load(snapshot(cfg, T0, b=record("b", T0 + 20)))
    assert holder.view is not None and holder.view.outage_active
    assert [m.state for m in holder.view.members] == ["stale", "eligible"]
    assert holder.wake_at() == math.nextafter(T0 + 50, math.inf)  # b stale past 30s
    clock.now = T0 + 45
    holder.refresh(holder.snapshot)
    assert holder.evaluations == 1
    clock.now = holder.wake_at()
    holder.refresh(holder.snapshot)
    assert holder.evaluations == 2 and holder.view.members[1].state == "stale"
    assert holder.wake_at() == math.inf


def test_without_a_heartbeat_records_are_judged_by_the_wall_clock() -> None:
    cfg = config()
    holder, clock = holder_at(T0)
    holder.load(dataclasses.replace(snapshot(cfg, T0), heartbeat=None))
    assert holder.wake_at() == math.nextafter(T0 + 30, math.inf)
    clock.now = holder.wake_at()
    holder.refresh(holder.snapshot)
    assert holder.evaluations == 2
    assert holder.view is not None and holder.view.members[0].state == "stale"


def test_without_a_heartbeat_records_refreshed_late_move_the_wake_up() -> None:
    """Records refreshed with the same content after the deadline of those they replace:
    the view stands, and the router sleeps until the new records' deadline (not at once)."""
    cfg = config()
    holder, clock = holder_at(T0)
    holder.load(dataclasses.replace(snapshot(cfg, T0), heartbeat=None))
    clock.now = T0 + 31
    holder.load(dataclasses.replace(snapshot(cfg, T0 + 31), heartbeat=None))
    assert holder.evaluations == 1
    assert holder.wake_at() == math.nextafter(T0 + 61, math.inf)


def test_the_keeper_says_when_it_evaluated() -> None:
    """The checker logs a view's transitions when its keeper says it evaluated: never for
    a refresh that kept the view, and before the first evaluation there is nothing to wake
    for."""
    cfg = config()
    clock = Clock(T0)
    keeper = ViewKeeper(clock)
    assert keeper.refresh(None) is False
    keeper.snapshot = snapshot(cfg, T0)  # held, as the checker does, not yet evaluated
    assert (keeper.view, keeper.wake_at()) == (None, math.inf)
    assert keeper.refresh(None) is True and keeper.evaluations == 1
    held, keeper.snapshot = keeper.snapshot, snapshot(cfg, T0 + 10)
    clock.now = T0 + 10
    assert keeper.refresh(held) is False and keeper.evaluations == 1
    held, keeper.snapshot = keeper.snapshot, snapshot(cfg, T0 + 20, b=record("b", T0 + 20, 95))
    clock.now = T0 + 20
    assert keeper.refresh(held) is True and keeper.evaluations == 2


def test_a_keeper_without_launches_of_its_own_evaluates_again_when_asked() -> None:
    """The checker's keeper counts no launches: evaluated again, its view counts none."""
    clock = Clock(T0)
    keeper = ViewKeeper(clock)
    keeper.reevaluate()  # nothing held yet: nothing to evaluate
    assert (keeper.evaluations, keeper.view) == (0, None)
    keeper.snapshot = snapshot(config(), T0, b=record("b", T0, pods=90))
    keeper.reevaluate()
    assert keeper.evaluations == 1 and keeper.view is not None
    assert [(m.name, m.state, m.pending_launches) for m in keeper.view.members] == [
        ("a", "eligible", 0),
        ("b", "full", 0),  # by its report alone
    ]


def test_a_snapshot_replaced_before_the_first_refresh_is_evaluated() -> None:
    cfg = config()
    keeper = ViewKeeper(Clock(T0 + 10))
    first = keeper.snapshot = snapshot(cfg, T0)
    keeper.snapshot = snapshot(cfg, T0 + 10)
    assert keeper.refresh(first) is True and keeper.evaluations == 1
    assert keeper.view is not None and keeper.view.evaluated_at == T0 + 10


def test_nothing_to_evaluate_without_a_snapshot() -> None:
    holder, _ = holder_at(T0)
    holder.refresh(None)
    assert (holder.evaluations, holder.view, holder.wake_at()) == (0, None, math.inf)
