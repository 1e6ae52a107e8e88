"""This router's launches to each member since that member's last ``/health`` report, and the
room each has left before this router counts it full (``shared.capacity``;
docs/architecture.md, "Capacity").

The counts outlive every routing table: a table points each route of a member that reports
its pods and quota at that member's :class:`Sent`, and sets the rooms when it takes a view
(:meth:`LaunchCounts.fit`). A launch takes one from the room, which counts it
(:meth:`router.routes.RoutingTable.answer`); the launch that uses up a member's room calls
:attr:`LaunchCounts.used_up`, which evaluates the view again at once, so the next launch
goes elsewhere. A newer report of a member starts its count again
(:meth:`LaunchCounts.since_reports`, which the view keeper calls before it judges a read).
How many routers share the launches is read from the store (:func:`count_routers`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

from shared.capacity import SentLaunches, headroom_pods, reported_since, room
from shared.evaluate import View
from shared.rules import pods_and_quota
from shared.store import Snapshot, Store

log = logging.getLogger("fedredirect.router")

#: The room of a member this router does not hold back: a fallback or outage set is not
#: chosen by capacity, so its launches are counted but never make this router re-evaluate.
NO_LIMIT = 1 << 62
#: How often a router registers itself in the store; one not seen for three of these is
#: counted out.
REGISTER_SECONDS = 2.0


class Sent:
    """One member's launches from this router since its last report, and its room. Taking
    one from the room counts a launch, so a launch costs one decrement."""

    __slots__ = ("_fitted", "member", "room")

    def __init__(self, member: str) -> None:
        self.member = member
        self.room = NO_LIMIT
        self._fitted = NO_LIMIT  # count + room, as the room was last set

    @property
    def count(self) -> int:
        """The launches sent since the member's last report."""
        return self._fitted - self.room

    def set_room(self, room: int) -> None:
        """A room worked out anew, the count kept."""
        self._fitted += room - self.room
        self.room = room

    def restart(self) -> None:
        """A new report: the count starts again from 0 (the room stays until set)."""
        self._fitted = self.room


class LaunchCounts:
    """This router's :class:`Sent` by member, and the number of routers it shares the
    federation's launches with (itself included)."""

    def __init__(
        self, used_up: Callable[[frozenset[str] | None], object] = lambda members: None
    ) -> None:
        self.members: dict[str, Sent] = {}
        #: Each member this router limits (it reports pods and a quota in the view fitted)
        #: -> its Sent; routes to any other member count nothing.
        self.limited: dict[str, Sent] = {}
        self.routers = 1
        #: evaluates the view again (the router's keeper): for the members whose room ran
        #: out, or None: for every member
        self.used_up = used_up
        self.fitted: View | None = None

    def sent(self) -> SentLaunches:
        """The launches to give the core (:func:`shared.evaluate.evaluate`)."""
        counts = {name: sent.count for name, sent in self.members.items() if sent.count}
        return SentLaunches(counts, self.routers)

    def since_reports(
        self, held: Snapshot | None, read: Snapshot
    ) -> tuple[SentLaunches, frozenset[str]]:
        """Start again from 0 the count of every member ``read`` brings a newer report of
        than ``held``, with its room from that report; the launches now, and those members
        this router counted full. Launches since a report make a member full but move no
        weight, so only then does the view change; elsewhere the count restarts alone."""
        restarted: set[str] = set()
        if held is not None and held is not read:
            old, new = held.observations.get, read.observations.get
            for name, sent in self.members.items():
                report = new(name)
                if sent.count and reported_since(old(name), report):
                    if sent.room <= 0:
                        restarted.add(name)
                    sent.restart()
                    counted = pods_and_quota(report) if name in self.limited else None
                    if counted is not None:  # none: a quota gone is a change of its own
                        pods, quota = counted
                        sent.set_room(room(pods, quota, read.config.pod_headroom, 0, self.routers))
        return self.sent(), frozenset(restarted)

    def fit(self, view: View) -> bool:
        """Set each member's room for ``view``, evaluated with the counts now: the launches
        this router may still send it before it counts it full (:func:`room`). True when
        the members it limits are others than before (routes must be pointed again)."""
        self.fitted = view
        limited = not (view.fallback_active or view.outage_active)
        pod_headroom, routers = view.config.pod_headroom, self.routers
        headrooms: dict[int, int] = {}  # by quota: a share of it ("10%") is a Fraction's work
        before, self.limited = self.limited, {}
        for gone in self.members.keys() - view.config.members.keys():
            del self.members[gone]
        for member in view.members:
            pods, quota = member.total_pods, member.quota
            if pods is None or quota is None:
                continue
            sent = self.members.get(member.name)
            if sent is None:
                sent = self.members[member.name] = Sent(member.name)
            if limited:
                headroom = headrooms.get(quota)
                if headroom is None:
                    headroom = headrooms[quota] = headroom_pods(pod_headroom, quota)
                sent.set_room(room(pods, quota, headroom, sent.count, routers))
            else:
                sent.set_room(NO_LIMIT)
            self.limited[member.name] = sent
        return self.limited.keys() != before.keys()

    def set_routers(self, routers: int) -> None:
        """Another number of routers: every room changes with it, and so do the views'
        pending launches while any count is above 0."""
        routers = max(1, routers)
        if routers == self.routers:
            return
        self.routers = routers
        if self.fitted is not None:
            self.fit(self.fitted)
        if any(sent.count for sent in self.members.values()):
            self.used_up(None)


def router_name() -> str:
    """This router process's name among the routers: ``HOST:PID``."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def count_routers(
    store: Store,
    counts: LaunchCounts,
    interval: float = REGISTER_SECONDS,
    name: str | None = None,
) -> None:
    """Forever: register this router (``name``, default :func:`router_name`) every
    ``interval`` seconds and take the number of live routers; on a store error keep the
    last number. Unregisters when cancelled."""
    name = name or router_name()
    failing = False
    try:
        while True:
            try:
                live = await store.register_router(name, 3 * interval)
            except Exception as exc:
                if not failing:
                    log.warning("cannot register in the store, counting %d routers: %s",
                                counts.routers, exc)  # fmt: skip
                failing = True
            else:
                failing = False
                counts.set_routers(live)
            await asyncio.sleep(interval)
    finally:
        try:
            await asyncio.wait_for(store.unregister_router(name), interval)
        except Exception as exc:  # the others count it out when it expires
            log.info("cannot unregister from the store: %s", exc)
