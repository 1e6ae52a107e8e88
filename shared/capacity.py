"""Capacity-aware weights: a member that reports a pod quota takes launches in proportion to
its configured weight times the share of its quota still free, and none once it is full.

The free pods are the quota less the pods its last ``/health`` reported, less the headroom,
less the launches sent to it since that report (:class:`SentLaunches`). A router counts only
its own launches and takes every router to have sent as many: the federation's launches
reach a member through every router alike (one load balancer in front), so ``routers x
own`` is the estimate, and each router stops at its part of the free pods with no
coordination between replicas (docs/architecture.md, "Capacity").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import NamedTuple

from shared.records import MemberObservation

#: The free share moves in steps of 1/STEPS, rounded up: a member's weight (and with it the
#: repositories rendezvous gives it) moves only when its free pods change by a twentieth of
#: its quota, not with every pod; the fullness rule itself counts single pods.
STEPS = 20


class SentLaunches(NamedTuple):
    """A router's launches to each member since that member's last ``/health`` report, and
    the number of routers that share the federation's launches (this one included)."""

    counts: Mapping[str, int]
    routers: int = 1

    def pending(self, member: str) -> int:
        """The launches the federation is taken to have sent ``member`` since its report."""
        return self.counts.get(member, 0) * max(1, self.routers)


NO_LAUNCHES = SentLaunches({})


def reported_since(old: MemberObservation | None, new: MemberObservation | None) -> bool:
    """Whether ``new`` brings a newer ``/health`` report than ``old``: the launches counted
    since ``old``'s are in its pods now, as far as the member knows, so the count starts
    again from 0."""
    if new is None or new.health is None:
        return False
    if old is None or old.health is None:
        return True
    return new.health.observed_at > old.health.observed_at


def headroom_pods(pod_headroom: int | str, quota: int) -> int:
    """The pods ``pod_headroom`` keeps free on a member with ``quota``: a count as given, or
    a share of the quota (``"10%"``) rounded up, so a member never keeps less than asked."""
    if isinstance(pod_headroom, int):
        return pod_headroom
    return math.ceil(Fraction(pod_headroom.removesuffix("%")) * quota / 100)


def free_pods(pods: int, quota: int, pod_headroom: int | str, pending: int = 0) -> int:
    """The launches a member can still take: its quota less its pods, its headroom and the
    launches sent since its report (0 or less: it is full)."""
    return quota - pods - headroom_pods(pod_headroom, quota) - pending


def free_share(pods: int, quota: int, pod_headroom: int | str) -> float:
    """The factor capacity puts on a member's weight: its free pods over its quota, in steps
    of 1/:data:`STEPS` rounded up (so a member with room keeps some weight), 0 when full."""
    free = free_pods(pods, quota, pod_headroom)
    if free <= 0:
        return 0.0
    return min(STEPS, math.ceil(free * STEPS / quota)) / STEPS


def room(pods: int, quota: int, pod_headroom: int | str, sent: int, routers: int) -> int:
    """The launches one router may still send a member before it counts it full: the
    fewest ``x`` with ``routers x (sent + x)`` at or past its free pods (0: full now)."""
    free = free_pods(pods, quota, pod_headroom) - routers * sent
    return max(0, -(-free // routers))
