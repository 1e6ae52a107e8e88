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


class LaunchWindow:
    """This router's launches per member over the last ``seconds``, kept in :data:`STEPS`
    buckets of counts per member (so its memory grows with the members, never with the
    launches): :meth:`advance` forgets the buckets that have left the window, :meth:`add`
    and :meth:`take` count a launch in the newest. Each is O(1) amortised (a bucket is
    forgotten once, for the launches that filled it). Fed the time, never reading a
    clock; a time earlier than one seen before forgets nothing and starts no bucket, so a
    clock stepping back loses no launch."""

    def __init__(self, seconds: float) -> None:
        # Plain dicts, not defaultdicts: CPython specialises a dict's lookups and stores to
        # its exact type, and take() makes four a launch (docs/benchmarks.md, issue 18 cost).
        #: launches per member in the window (only members with some)
        self.counts: dict[str, int] = {}
        self.total = 0
        self._newest: dict[str, int] = {}  # the bucket launches go in
        self._newest_end = -math.inf  # launches before any advance() leave at the first
        #: (the instant it ends, its launches per member), oldest first
        self._buckets = deque([(self._newest_end, self._newest)])
        self.due: float  # the instant from which advance() has something to do
        self.resize(seconds)

    def resize(self, seconds: float) -> None:
        """Keep launches for ``seconds`` from now on (a config reload), forgetting none."""
        self.seconds = seconds
        self.step = seconds / STEPS
        self.due = -math.inf

    def advance(self, now: float) -> None:
        """Move the window to ``now``: forget the buckets that ended ``seconds`` or more
        before it, and start a new bucket, ``step`` long, once the newest has ended."""
        if now < self.due:
            return
        buckets, counts = self._buckets, self.counts
        horizon = now - self.seconds
        while buckets and buckets[0][0] <= horizon:
            for member, n in buckets.popleft()[1].items():
                left = counts[member] - n
                if left:
                    counts[member] = left
                else:
                    del counts[member]
                self.total -= n
        if now >= self._newest_end:
            self._newest_end = now + self.step
            self._newest = {}
            buckets.append((self._newest_end, self._newest))
        self.due = min(self._newest_end, buckets[0][0] + self.seconds)

    def add(self, member: str) -> None:
        """Count one launch to ``member`` at the time last given to :meth:`advance`."""
        newest, counts = self._newest, self.counts
        newest[member] = newest.get(member, 0) + 1
        counts[member] = counts.get(member, 0) + 1
        self.total += 1

    def take(self, order: Sequence[Candidate], now: float) -> int | None:
        """:func:`first_within_bound` of ``order`` against this window moved to ``now``,
        and the launch counted to the member it names (none counted when it names none).
        The same comparison, written out once more: the router makes this one call a
        launch, where moving the window, the rule and :meth:`add` would be three."""
        if now >= self.due:
            self.advance(now)
        counts, places = self.counts, self.total + 1
        # Walked by index, each count read once: a for loop makes an iterator a launch, and
        # unpacking a NamedTuple another (docs/benchmarks.md, issue 18 cost).
        i, end = 0, len(order)
        while i < end:
            candidate = order[i]
            member = candidate[0]
            launches = counts.get(member, 0)
            if launches < candidate[1] * places:
                newest = self._newest
                newest[member] = newest.get(member, 0) + 1
                counts[member] = launches + 1
                self.total = places
                return i
            i += 1
        return None
