"""A router counts its launches to each member since that member's last report against its
free pods (router/sent.py, issue 18): the launch that uses up a member's room has the view
evaluated again at once, so the next one goes elsewhere; a newer report starts the count
again; the counts outlive every routing table."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from router.redirect import RedirectApp
from router.sent import NO_LIMIT
from router.snapshot import SnapshotHolder
from shared.capacity import free_pods, reported_since, room
from shared.config import FederationConfig, parse_config
from shared.records import CheckerHeartbeat, Drain, HealthObservation, MemberObservation
from shared.store import Snapshot
from tests.support.inprocess import launch_answer

T0 = 1_700_000_000.0
V1 = {"binderhub": "1.0"}
#: small reports a quota of 20 (and far the highest weight: it takes every launch it may);
#: big reports none, so it is never full.
WEIGHTS = {"small": 1000.0, "big": 1.0, "other": 1.0}
REPO = b"/build/gh/org/repo/HEAD"


def config(**settings: Any) -> FederationConfig:
    members = {
        n: {"url": f"https://{n}.example.org", "weight": w, "prime": n == "big"}
        for n, w in WEIGHTS.items()
    }
    doc = {"check": {"period": 30}, "pod_headroom": "10%", "slow_start": 0, **settings}
    return parse_config({**doc, "members": members}, "test")


def record(name: str, at: float, pods: int | None = 0, quota: int | None = 20) -> MemberObservation:
    health = HealthObservation("ok", (), pods, quota, at)
    return MemberObservation(member=name, checked_at=at, health=health, versions=V1, versions_at=at)


def snapshot(
    cfg: FederationConfig, at: float, generation: int, **records: MemberObservation
) -> Snapshot:
    """small with pods 0 of 20, big and other with no quota, all reported at ``at``."""
    observations = {
        "small": record("small", at),
        "big": record("big", at, quota=None),
        "other": record("other", at, quota=None),
        **records,
    }
    return Snapshot(cfg, observations, CheckerHeartbeat("c", at), generation=generation)


async def _no_fallthrough(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not a launch")


def router(snap: Snapshot) -> RedirectApp:
    holder = SnapshotHolder(None, clock=lambda: snap.heartbeat.at if snap.heartbeat else T0)
    holder.load(snap)
    return RedirectApp(holder, _no_fallthrough)


def launch(app: RedirectApp, path: bytes = REPO) -> str:
    """The member a launch of ``path`` is sent to, through the app as a server calls it."""
    answer = launch_answer(app, path, [(b"host", b"router.example.org")])
    assert answer["status"] == 307, answer
    location = answer[b"location"].decode()
    return location.removeprefix("https://").partition(".")[0]


def to_small(app: RedirectApp, launches: int) -> int:
    """Of ``launches`` launches, how many went to small before the first that did not (all
    of them: ``launches``)."""
    for i in range(launches):
        if launch(app) != "small":
            return i
    return launches


def small(app: RedirectApp) -> Any:
    view = app.holder.view
    assert view is not None
    member = view.member("small")
    assert member is not None
    return member


def test_the_launch_that_uses_up_a_members_room_sends_the_next_elsewhere() -> None:
    app = router(snapshot(config(), T0, 1))
    evaluated = app.holder.evaluations
    sent = [launch(app) for _ in range(18)]
    assert sent == ["small"] * 18  # quota 20, headroom 2: room for 18
    assert app.holder.evaluations == evaluated + 1  # at once, by the 18th
    assert small(app).state == "full"
    assert small(app).reasons == (
        "full: 0 pods + 18 launches since + headroom 2 (10%) >= quota 20",
    )
    assert launch(app) != "small"
    assert app.holder.launches.members["small"].count == 18
    assert app.holder.evaluations == evaluated + 1  # a member without a quota never limits


def test_every_router_stops_at_its_part_of_the_free_pods() -> None:
    app = router(snapshot(config(), T0, 1))
    app.holder.launches.set_routers(2)  # no launch counted yet: only the rooms move
    assert to_small(app, 10) == 9
    assert small(app).pending_launches == 18
    assert small(app).reasons == (
        "full: 0 pods + 18 launches since + headroom 2 (10%) >= quota 20",
    )
    app.holder.launches.set_routers(3)  # fewer free pods for each: judged again at once
    assert small(app).pending_launches == 27


def test_a_newer_report_starts_the_count_again() -> None:
    cfg = config()
    app = router(snapshot(cfg, T0, 1))
    for _ in range(18):
        launch(app)
    assert small(app).state == "full"
    # Its report now holds those launches: 18 pods, still full by its own numbers.
    evaluated = app.holder.evaluations
    app.holder.load(snapshot(cfg, T0 + 30, 2, small=record("small", T0 + 30, pods=18)))
    assert app.holder.evaluations == evaluated + 1
    assert app.holder.launches.members["small"].count == 0
    assert small(app).reasons == ("full: 18 pods + headroom 2 (10%) >= quota 20",)
    # Ten of its pods end: room for 8 again, taken by the next 8 launches.
    app.holder.load(snapshot(cfg, T0 + 60, 3, small=record("small", T0 + 60, pods=10)))
    assert to_small(app, 9) == 8


def test_a_refreshed_record_of_a_member_with_no_launches_counted_is_no_change() -> None:
    cfg = config()
    app = router(snapshot(cfg, T0, 1))
    launch(app)
    evaluated = app.holder.evaluations
    # big and other never count (no quota); small's report is the one its count runs from.
    refreshed = {n: record(n, T0 + 10, quota=None) for n in ("big", "other")}
    app.holder.load(snapshot(cfg, T0 + 10, 2, small=record("small", T0), **refreshed))
    assert app.holder.evaluations == evaluated
    assert app.holder.launches.members["small"].count == 1
    # A newer report of small, its one launch in it now: the count starts again, and since
    # that launch did not fill small, its view stays as it is.
    later = record("small", T0 + 20)
    app.holder.load(snapshot(cfg, T0 + 20, 3, small=later, **refreshed))
    assert app.holder.evaluations == evaluated
    assert app.holder.launches.members["small"].count == 0


def test_counts_and_rooms_survive_a_new_routing_table() -> None:
    cfg = config()
    app = router(snapshot(cfg, T0, 1))
    assert [launch(app) for _ in range(5)] == ["small"] * 5
    first = app.table
    # other is drained: a new table (its targets changed), the count of small goes on.
    snap = dataclasses.replace(snapshot(cfg, T0, 1), drains={"other": Drain("other", "", T0)})
    app.holder.load(dataclasses.replace(snap, generation=2))
    assert to_small(app, 14) == 13
    assert app.table is not first
    assert app.holder.launches.members["small"].count == 18


def test_a_fallback_set_is_not_held_back_by_its_rooms() -> None:
    """Every member full, the prime takes launches as the fallback says: its room does not
    make the router evaluate again on each of them."""
    cfg = config(fallback="prime")
    full = {n: record(n, T0, pods=18) for n in WEIGHTS}
    app = router(snapshot(cfg, T0, 1, **full))
    view = app.holder.view
    assert view is not None and view.fallback_active
    evaluated = app.holder.evaluations
    assert [launch(app) for _ in range(30)] == ["big"] * 30
    assert app.holder.evaluations == evaluated
    assert app.holder.launches.members["big"].room > NO_LIMIT - 100


@settings(max_examples=60, deadline=None)
@given(
    pods=st.integers(0, 40),
    quota=st.integers(0, 40),
    headroom=st.integers(0, 8) | st.sampled_from(["0%", "10%", "25%"]),
    routers=st.integers(1, 4),
)
def test_a_router_sends_a_member_its_room_and_not_one_launch_more(
    pods: int, quota: int, headroom: int | str, routers: int
) -> None:
    """Whatever the numbers, a router sends a member exactly its room before it counts it
    full: the fewest launches that, sent by every router alike, fill its free pods."""
    small = record("small", T0, pods, quota)
    app = router(snapshot(config(pod_headroom=headroom), T0, 1, small=small))
    app.holder.launches.set_routers(routers)
    sent = 0
    while launch(app) == "small":
        sent += 1
    assert sent == room(pods, quota, headroom, 0, routers)
    free = free_pods(pods, quota, headroom)
    assert routers * sent >= free
    assert sent == 0 or routers * (sent - 1) < free


def test_a_view_with_the_same_targets_keeps_its_table_and_takes_the_new_rooms() -> None:
    """A quota of 200 moves small's weight only every 10 pods: a report of 9 pods (the 5
    launches sent and 4 from elsewhere) leaves its targets as they were, not its room."""
    cfg = config()
    app = router(snapshot(cfg, T0, 1, small=record("small", T0, quota=200)))
    assert to_small(app, 5) == 5
    table = app.table
    app.holder.load(snapshot(cfg, T0 + 30, 2, small=record("small", T0 + 30, 9, 200)))
    assert launch(app) == "small" and app.table is table
    assert to_small(app, 171) == 170  # 171 in all: 200 - 9 - headroom 20
    assert small(app).reasons == (
        "full: 9 pods + 171 launches since + headroom 20 (10%) >= quota 200",
    )


def test_only_a_newer_health_report_starts_a_count_again() -> None:
    old = record("small", T0)
    unanswered = dataclasses.replace(old, health=None)
    assert reported_since(old, record("small", T0 + 1))
    assert not reported_since(old, record("small", T0))  # refreshed, same report
    assert not reported_since(old, dataclasses.replace(old, checked_at=T0 + 5))
    assert not reported_since(record("small", T0 + 1), old)  # an older one read late
    assert not reported_since(old, None) and not reported_since(old, unanswered)
    assert reported_since(None, old) and reported_since(unanswered, old)


def test_a_room_used_up_judges_that_member_alone_as_a_whole_evaluation_would() -> None:
    snap = snapshot(config(), T0, 1)
    app = router(snap)
    before = app.holder.view
    assert before is not None
    assert to_small(app, 19) == 18
    after = app.holder.view
    assert after is not None and small(app).state == "full"
    assert after == snap.evaluate(T0, app.holder.launches.sent())
    assert after.member("big") is before.member("big")  # not judged again


def test_a_full_member_reported_anew_alone_is_judged_again_alone() -> None:
    cfg = config()
    first = snapshot(cfg, T0, 1)
    app = router(first)
    to_small(app, 19)
    held = app.holder.view
    assert held is not None and small(app).state == "full"
    # Only small's report is newer (the same pods): its count starts again, nothing else moved.
    observations = first.observations | {"small": record("small", T0 + 5)}
    read = dataclasses.replace(first, observations=observations, generation=2)
    evaluated = app.holder.evaluations
    app.holder.load(read)
    assert app.holder.evaluations == evaluated + 1
    assert small(app).state == "eligible" and small(app).pending_launches == 0
    view = app.holder.view
    assert view is not None and view.member("other") is held.member("other")
    assert view == read.evaluate(T0, app.holder.launches.sent())


def test_a_room_used_up_where_gating_would_leave_nobody_judges_the_whole_view() -> None:
    """small, the prime, alone runs the reference's version: full, it would leave nobody
    but version mismatches, so gating is suspended and the others take the next launch."""
    members = {
        n: {"url": f"https://{n}.example.org", "weight": w, "prime": n == "small"}
        for n, w in WEIGHTS.items()
    }
    cfg = parse_config({"pod_headroom": "10%", "slow_start": 0, "members": members}, "test")
    v2 = {"binderhub": "2.0"}
    others = {
        n: dataclasses.replace(record(n, T0, quota=None), versions=v2) for n in ("big", "other")
    }
    snap = snapshot(cfg, T0, 1, **others)
    app = router(snap)
    assert [t.name for t in app.holder.view.targets] == ["small"]  # type: ignore[union-attr]
    assert to_small(app, 19) == 18
    view = app.holder.view
    assert view is not None and view.gate_suspended and small(app).state == "full"
    assert view == snap.evaluate(T0, app.holder.launches.sent())


def test_a_room_used_up_after_the_records_went_stale_judges_the_whole_view() -> None:
    """Without a heartbeat records age by the wall clock: by the launch that uses up small's
    room they are stale, and the view that launch has evaluated says so of every member."""
    snap = dataclasses.replace(snapshot(config(), T0, 1), heartbeat=None)
    now = [T0]
    holder = SnapshotHolder(None, clock=lambda: now[0])
    holder.load(snap)
    app = RedirectApp(holder, _no_fallthrough)
    now[0] = T0 + 1000
    assert to_small(app, 18) == 18
    view = holder.view
    assert view is not None and view == snap.evaluate(T0 + 1000, holder.launches.sent())
    assert {m.state for m in view.members} == {"stale"}
