"""The checker's side of slow start (issue 18), against real members and a real Redis: it
stamps each record with when its view found the member eligible after an exclusion, or new
(``eligible_since``), and a router's view of the published records ramps it from there.

The checker's wall clock is the test's (:class:`Clock`), so the instants it stamps are
exact and a ramp of 100 s passes in a few checks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from fedredirect.simulator import MemberServer
from shared.config import FederationConfig, parse_config
from shared.evaluate import MemberView, View
from shared.records import Drain, MemberObservation
from shared.slowstart import FLOOR, ramp_factor
from shared.store import Snapshot, Store
from tests.support.checker_loop import eventually, running_checker
from tests.support.stack import named_members

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000.0
SLOW_START = 100.0
WEIGHTS = {"a": 10.0, "b": 30.0, "c": 20.0}


class Clock:
    """The checker's wall clock, moved by the test."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def config_for(members: dict[str, MemberServer]) -> FederationConfig:
    """Fast checks; records, versions and heartbeats that never age out however far the
    test moves the clock, so only the ramp moves with it."""
    return parse_config(
        {
            "check": {
                "period": 0.3, "timeout": 1.0, "jitter": 0.0, "failed_period": 0.3,
                "fast_interval": 0.1, "rise": 1, "fall": 1,
            },
            "slow_start": SLOW_START,
            "record_max_age": 3600,
            "versions": {"max_age": 3600},
            "outage": {"max_staleness": 3600},
            "outcomes": {"enabled": False},
            "members": {
                name: {"url": server.url, "weight": WEIGHTS[name], "prime": name == "a"}
                for name, server in members.items()
            },
        }
    )  # fmt: skip


@contextlib.contextmanager
def federation(*names: str) -> Iterator[tuple[dict[str, MemberServer], FederationConfig]]:
    with named_members(*names) as members:
        yield members, config_for(members)


def simulate(member: MemberServer, **update: Any) -> None:
    httpx.post(f"{member.url}/_sim", json=update).raise_for_status()


async def published_when(
    store: Store, holds: Callable[[Snapshot], bool], timeout: float = 10.0
) -> Snapshot:
    """The published snapshot, once ``holds`` it."""

    async def read() -> Snapshot | None:
        snapshot = await store.read()
        return snapshot if snapshot is not None and holds(snapshot) else None

    return await eventually(read, timeout)


def record(snapshot: Snapshot, name: str) -> MemberObservation:
    return snapshot.observations[name]


def as_of(at: float) -> Callable[[Snapshot], bool]:
    """A snapshot whose heartbeat (the instant its view is judged at) is ``at``."""
    return lambda s: s.heartbeat is not None and s.heartbeat.at == at


def routed(snapshot: Snapshot) -> View:
    """The view a router serves from the published records, at the checker's heartbeat."""
    assert snapshot.heartbeat is not None
    return snapshot.evaluate(snapshot.heartbeat.at)


def member(view: View, name: str) -> MemberView:
    found = view.member(name)
    assert found is not None
    return found


def state(snapshot: Snapshot, name: str) -> str:
    return member(routed(snapshot), name).state


def full_weight(m: MemberView) -> float:
    """Its weight by its capacity alone (the simulated member's 10 pods of 100, headroom
    10: 0.8)."""
    assert m.capacity_share == 0.8
    return WEIGHTS[m.name] * m.capacity_share


async def test_a_fresh_federation_ramps_together(redis_url: str, key_prefix: str) -> None:
    """With nothing published yet, every member is new and ramps from the first publish:
    the same factor for all, so the shares between them are the configured ones."""
    clock = Clock(T0)
    with federation("a", "b") as (_members, config):
        async with running_checker(config, redis_url, key_prefix, clock=clock) as (_c, store):
            first = await published_when(store, lambda s: len(s.observations) == 2)
            assert {n: o.eligible_since for n, o in first.observations.items()} == {
                "a": T0,
                "b": T0,
            }
            view = routed(first)
            assert [(t.name, t.weight) for t in view.targets] == [
                (m.name, full_weight(m) * FLOOR) for m in view.members
            ]


async def test_a_member_back_from_an_exclusion_ramps_from_the_view_that_found_it_eligible(
    redis_url: str, key_prefix: str
) -> None:
    clock = Clock(T0)
    with federation("a", "b") as (members, config):
        async with running_checker(config, redis_url, key_prefix, clock=clock) as (_c, store):
            await published_when(store, lambda s: len(s.observations) == 2)
            clock.at = T0 + SLOW_START  # the first ramps are over
            simulate(members["b"], healthy=False)
            down = await published_when(store, lambda s: state(s, "b") == "unhealthy")
            assert record(down, "b").eligible_since is None
            assert record(down, "a").eligible_since == T0

            back_at = clock.at = T0 + 2 * SLOW_START
            simulate(members["b"], healthy=True)
            back = await published_when(store, lambda s: state(s, "b") == "eligible")
            assert record(back, "b").eligible_since == back_at
            assert record(back, "a").eligible_since == T0
            b, a = member(routed(back), "b"), member(routed(back), "a")
            assert (b.ramp, b.effective_weight) == (FLOOR, full_weight(b) * FLOOR)
            assert (a.ramp, a.effective_weight) == (None, full_weight(a))

            # Each step of the ramp: a tenth of slow_start, rising as the square of the time.
            for step in (1, 5, 9):
                clock.at = back_at + step * SLOW_START / 10
                view = routed(await published_when(store, as_of(clock.at)))
                b = member(view, "b")
                assert (b.eligible_since, b.ramp) == (back_at, ramp_factor(step))
                assert b.effective_weight == full_weight(b) * ramp_factor(step)
            clock.at = back_at + SLOW_START
            done = member(routed(await published_when(store, as_of(clock.at))), "b")
            assert (done.ramp, done.effective_weight) == (None, full_weight(done))


async def test_being_full_is_no_break_and_a_drain_is(redis_url: str, key_prefix: str) -> None:
    """A full member with room again goes on as it was (its capacity share brought its
    weight down and back already); one back from a drain ramps again."""
    clock = Clock(T0)
    with federation("a", "b") as (members, config):
        async with running_checker(config, redis_url, key_prefix, clock=clock) as (_c, store):
            await published_when(store, lambda s: len(s.observations) == 2)
            clock.at = T0 + SLOW_START
            simulate(members["b"], full=True)
            full = await published_when(store, lambda s: state(s, "b") == "full")
            assert record(full, "b").eligible_since == T0
            simulate(members["b"], full=False)
            room = await published_when(store, lambda s: state(s, "b") == "eligible")
            assert record(room, "b").eligible_since == T0
            assert member(routed(room), "b").ramp is None

            await store.set_drain(Drain("b", "maintenance", clock.at))
            drained = await published_when(store, lambda s: record(s, "b").eligible_since is None)
            assert member(routed(drained), "b").state == "drained"
            undrained_at = clock.at = T0 + 2 * SLOW_START
            await store.clear_drain("b")
            # Routers read the lifted drain at once, the start with the checker's next
            # publish: until then its record says excluded, and it takes the floor.
            lifted = await published_when(store, lambda s: not s.drains)
            assert member(routed(lifted), "b").ramp == FLOOR
            back = await published_when(store, lambda s: record(s, "b").eligible_since is not None)
            assert record(back, "b").eligible_since == undrained_at
            assert member(routed(back), "b").ramp == FLOOR


async def test_a_standby_taking_over_keeps_every_start(redis_url: str, key_prefix: str) -> None:
    """The standby has checked all along, but never published: its own records know no
    start. Taking over, it carries on the published ones, so no member ramps again."""
    clock = Clock(T0)
    with federation("a", "b") as (members, config):
        async with contextlib.AsyncExitStack() as first_running:
            _first, store = await first_running.enter_async_context(
                running_checker(config, redis_url, key_prefix, "first", clock)
            )
            await published_when(store, lambda s: len(s.observations) == 2)
            clock.at = T0 + SLOW_START
            simulate(members["b"], healthy=False)
            await published_when(store, lambda s: record(s, "b").eligible_since is None)
            back_at = clock.at = T0 + SLOW_START + 10
            simulate(members["b"], healthy=True)
            await published_when(store, lambda s: record(s, "b").eligible_since == back_at)
            async with running_checker(config, redis_url, key_prefix, "second", clock) as (
                second,
                _,
            ):
                await eventually(lambda: len(second.observations) == 2)
                await first_running.aclose()  # the first checker stops, freeing the lease
                clock.at = back_at + 30
                taken = await published_when(
                    store, lambda s: s.heartbeat is not None and s.heartbeat.checker_id == "second"
                )
                assert {n: o.eligible_since for n, o in taken.observations.items()} == {
                    "a": T0,
                    "b": back_at,
                }
                view = routed(await published_when(store, as_of(back_at + 30)))
                assert member(view, "b").ramp == ramp_factor(3)
                assert member(view, "a").ramp is None


async def test_a_config_reload_keeps_the_starts_and_a_new_member_ramps(
    redis_url: str, key_prefix: str
) -> None:
    """A reload is a checker restarted on the new config: the members it had keep their
    starts, and a member new to the config ramps from the new checker's first publish."""
    clock = Clock(T0)
    with federation("a", "b", "c") as (members, three):
        two = config_for({n: members[n] for n in ("a", "b")})
        async with running_checker(two, redis_url, key_prefix, "before", clock) as (_c, store):
            await published_when(store, lambda s: len(s.observations) == 2)
        reloaded_at = clock.at = T0 + SLOW_START
        async with running_checker(three, redis_url, key_prefix, "after", clock) as (_c, store):
            after = await published_when(store, lambda s: len(s.observations) == 3)
            assert after.heartbeat is not None and after.heartbeat.checker_id == "after"
            assert {n: o.eligible_since for n, o in after.observations.items()} == {
                "a": T0,
                "b": T0,
                "c": reloaded_at,
            }
            view = routed(after)
            assert [member(view, n).ramp for n in ("a", "b", "c")] == [None, None, FLOOR]
