"""Bounded-load rendezvous: a repository's member in its rendezvous order, passed over while
it has taken more than its share of this router's recent launches.

Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2016), on weighted
rendezvous: with ``n`` launches in the window, a member may take at most
``ceil(factor x its weighted share x (n + 1))`` of them, the launch being placed counted.
A launch goes to the first member of its repository's order that is below its bound, so a
repository keeps its member (and that member's image cache) until the member is past its
share, and a hot repository spills over to the next member of its own order, the same on
every router. The bounds add up to more than ``n + 1`` (``factor > 1``, shares summing to
1), so while the window counts no more than ``n`` launches some member is below its bound.

The window is this router's own launches: every router bounds its own traffic, and the
sums over routers bound the federation's (docs/architecture.md, "Bounded load").
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

from shared.balance import Target, rendezvous_score

#: The window moves in this many steps: a launch leaves it between ``window`` and
#: ``window x (1 + 1 / STEPS)`` seconds after it was made (never earlier: what the window
#: counts covers at least its length).
STEPS = 50


class Candidate(NamedTuple):
    """A member in a repository's order, with ``limit`` = factor x its weighted share:
    its bound is ``ceil(limit x (launches in the window + 1))``."""

    member: str
    limit: float


class Launches(Protocol):
    """Launches in a window, per member and in all (a :class:`LaunchWindow`)."""

    @property
    def counts(self) -> Mapping[str, int]: ...

    @property
    def total(self) -> int: ...


class MemberLoad(NamedTuple):
    """One member's part of the launches in the window, as pages show it."""

    launches: int
    share: float | None  # of the launches in the window (None: there are none)
    weighted_share: float | None  # of the targets' weight (None: not a target)
    bound: int | None  # the most it may have and still be chosen (None: not a target)


class RecentLaunches(NamedTuple):
    """A router's recent launches as pages show them (``load_balancer: bounded``)."""

    window: float  # the window's length in seconds
    launches: int  # in the window, to every member
    loads: Mapping[str, MemberLoad]  # by member: see member_loads()
    passed_over: Mapping[str, int]  # by member: launches passed over since the router started


def rendezvous_order(key: str, targets: Sequence[Target]) -> tuple[Target, ...]:
    """The targets of positive weight by descending rendezvous score, ties to the greatest
    name: the order's first is exactly :func:`shared.balance.rendezvous_pick`'s pick."""
    ranked = [t for t in targets if t.weight > 0]
    ranked.sort(key=lambda t: (rendezvous_score(key, t), t.name), reverse=True)
    return tuple(ranked)


def with_limits(order: Sequence[Target], factor: float) -> tuple[Candidate, ...]:
    """``order`` with each member's limit: ``factor`` x its weight / the order's weight."""
    total = math.fsum(t.weight for t in order)  # exact: the same in any order of members
    return tuple([Candidate(t.name, factor * t.weight / total) for t in order])


def bound(limit: float, launches: int) -> int:
    """A member's bound when the window holds ``launches``: ceil(limit x (launches + 1))."""
    return math.ceil(limit * (launches + 1))


def first_within_bound(
    order: Sequence[Candidate], counts: Mapping[str, int], total: int
) -> int | None:
    """The index in ``order`` of the first member whose launches in the window (``counts``,
    ``total`` in all) are below its :func:`bound`; None when none is (a window that counts
    more launches than ``total``). Compared as ``launches < limit x (total + 1)``: for a
    whole number of launches that is the same as below the bound, without rounding."""
    places = total + 1
    i = 0  # counted by hand: this runs for every launch, and enumerate() costs more
    for member, limit in order:
        if counts.get(member, 0) < limit * places:
            return i
        i += 1  # noqa: SIM113 (see above)
    return None


def bounded_pick(
    key: str, targets: Sequence[Target], factor: float, launches: Launches | None
) -> Target | None:
    """The member a launch of cache key ``key`` goes to: the first of its rendezvous order
    below its bound of ``launches`` (None: an empty window, so the order's first)."""
    order = rendezvous_order(key, targets)
    if not order:
        return None
    if launches is None:
        return order[0]
    chosen = first_within_bound(with_limits(order, factor), launches.counts, launches.total)
    return order[0 if chosen is None else chosen]


def member_loads(
    targets: Sequence[Target], factor: float, launches: Launches
) -> dict[str, MemberLoad]:
    """Every target's and every counted member's part of the window: its launches, its
    share of them, its weighted share and its bound (the last two for targets only)."""
    weighted = [t for t in targets if t.weight > 0]
    weight = math.fsum(t.weight for t in weighted)
    shares = {t.name: t.weight / weight for t in weighted}
    limits = dict(with_limits(weighted, factor))  # the limits the choice compares with
    counts, total = launches.counts, launches.total
    loads: dict[str, MemberLoad] = {}
    for name in [*shares, *(m for m in counts if m not in shares)]:
        n = counts.get(name, 0)
        limit = limits.get(name)
        loads[name] = MemberLoad(
            launches=n,
            share=n / total if total else None,
            weighted_share=shares.get(name),
            bound=None if limit is None else bound(limit, total),
        )
    return loads


#: The room of a member whose limit is 1 or more: its bound never stops it.
UNBOUNDED = 1 << 62


def room(limit: float, launches: int, total: int) -> int:
    """How many launches in a row a member with ``launches`` of the window's ``total`` may
    take while below its bound: the number of ``j >= 0`` with ``launches + j < limit x
    (total + j + 1)``, its own launches counted in the total as they come. Others' launches
    only raise its bound, so it may take at least that many before one has to look again.
    Compared as :func:`first_within_bound` compares, so the room never promises a launch
    the rule would refuse."""
    if limit >= 1.0:
        return UNBOUNDED
    j = max(0, math.ceil((limit * (total + 1) - launches) / (1.0 - limit)))
    while j > 0 and not launches + j - 1 < limit * (total + j):  # rounding: one too many
        j -= 1
    while launches + j < limit * (total + j + 1):  # rounding: one too few
        j += 1
    return j


class Load:
    """One member's part of a :class:`LaunchWindow`: its ``limit`` (factor x its weighted
    share, 0 while it is no target), its ``room`` (:func:`room`), and the launches counted
    to it since the window began (``taken``; ``base`` of them as the window's oldest bucket
    began, so ``taken - base`` are in the window). Taking one from the room counts a
    launch: a router takes a launch for the member while its room is above 0 by that
    alone, and one to the window's total (:meth:`LaunchWindow.add`, written out)."""

    __slots__ = ("_fitted", "base", "limit", "member", "room")

    def __init__(self, member: str) -> None:
        self.member = member
        self.limit = 0.0
        self.room = 0
        self._fitted = 0  # taken + room, as the room was last set
        self.base = 0

    @property
    def taken(self) -> int:
        return self._fitted - self.room

    def set_room(self, room: int) -> None:
        """A room worked out anew, the launches taken kept."""
        self._fitted += room - self.room
        self.room = room


class LaunchWindow:
    """This router's launches per member over the last ``seconds``, moved by :meth:`advance`
    in :data:`STEPS` buckets: each bucket keeps every member's count as it began (so its
    memory grows with the members, never with the launches), and a bucket that has left
    the window moves the window's start to the next. :meth:`add` and :meth:`take` count a
    launch; each call is O(1) amortised but :meth:`advance`'s, which is O(members) once a
    step. Fed the time, never reading a clock; a time earlier than one seen before forgets
    nothing and starts no bucket, so a clock stepping back loses no launch."""

    def __init__(self, seconds: float) -> None:
        #: each member's :class:`Load`, in the order they came (a bucket lists their counts
        #: in this order)
        self.loads: dict[str, Load] = {}
        #: every launch counted since the window began
        self.taken = 0
        self._base_taken = 0  # ... when its oldest bucket began
        self._newest_end = -math.inf  # launches before any advance() are the first bucket's
        #: (the instant it ends, each member's taken and the launches taken as it began),
        #: oldest first
        self._buckets: deque[tuple[float, tuple[int, ...], int]] = deque()
        self.due: float  # the instant from which advance() has something to do
        self.resize(seconds)

    @property
    def counts(self) -> dict[str, int]:
        """Launches per member in the window (only members with some)."""
        return {m: n for m, load in self.loads.items() if (n := load.taken - load.base)}

    @property
    def total(self) -> int:
        """Launches in the window, to every member."""
        return self.taken - self._base_taken

    def load(self, member: str) -> Load:
        """``member``'s part of the window (a new one: no launch, no limit)."""
        found = self.loads.get(member)
        if found is None:
            found = self.loads[member] = Load(member)
        return found

    def set_limits(self, limits: Mapping[str, float]) -> None:
        """Each member's limit (a new view's targets or factor; 0 for any other member), and
        with it its room."""
        for member in limits:
            self.load(member)
        for member, load in self.loads.items():
            load.limit = limits.get(member, 0.0)
        self._fit_rooms()

    def _fit_rooms(self) -> None:
        total = self.total
        for load in self.loads.values():
            load.set_room(room(load.limit, load.taken - load.base, total))

    def resize(self, seconds: float) -> None:
        """Keep launches for ``seconds`` from now on (a config reload), forgetting none."""
        self.seconds = seconds
        self.step = seconds / STEPS
        self.due = -math.inf

    def advance(self, now: float) -> None:
        """Move the window to ``now``: start a new bucket, ``step`` long, once the newest
        has ended, and forget the buckets that ended ``seconds`` or more before ``now``
        (then every room is fitted again: the window's total fell)."""
        if now < self.due:
            return
        buckets = self._buckets
        if now >= self._newest_end:
            self._newest_end = now + self.step
            began = tuple([load.taken for load in self.loads.values()])
            buckets.append((self._newest_end, began, self.taken))
        horizon = now - self.seconds
        if buckets[0][0] <= horizon:
            while buckets[0][0] <= horizon:  # the newest ends after now: never forgotten
                buckets.popleft()
            _, began, self._base_taken = buckets[0]
            for i, load in enumerate(self.loads.values()):
                load.base = began[i] if i < len(began) else 0  # came later: had none then
            self._fit_rooms()
        self.due = min(self._newest_end, buckets[0][0] + self.seconds)

    def add(self, member: str) -> None:
        """Count one launch to ``member`` (in the newest bucket)."""
        self.load(member).room -= 1
        self.taken += 1

    def take(self, order: Sequence[Load]) -> int | None:
        """:func:`first_within_bound` of ``order`` (its members' limits) against this
        window, and the launch counted to the member it names, whose room is fitted again
        (none counted when it names none)."""
        places = self.taken - self._base_taken + 1
        for i, load in enumerate(order):
            launches = load.taken - load.base
            if launches < load.limit * places:
                load.room -= 1
                self.taken += 1
                load.set_room(room(load.limit, launches + 1, places))
                return i
        return None
