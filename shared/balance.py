"""Balancing: which of the target members gets one request.

Weighted rendezvous hashing gives every replica the same answer for the same key and
target set, and when a member leaves only its own keys move. The hash, the score and the
cache key are the replaced redirector's (mybinder.org's federation-redirect), so that a
migration keeps every repository on the member that already built and cached its image.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

# Providers whose last path segment is a ref, with the minimum number of segments
# (after the provider) for the last one to be a ref. ``gh`` follows the replaced
# redirector's rule instead (see cache_key).
_REF_PROVIDERS = {"gh": 3, "gist": 3, "gl": 2, "git": 2}
_LEGACY_REF_PREFIX = "/build/gh"
MAX_HASH = 2**64 - 1


@dataclass(frozen=True)
class Target:
    """A member that can receive launches, with the weight the balancer uses."""

    name: str
    url: str
    weight: float


def repo_path(path: str) -> str:
    """``/build/gh/org/repo/ref`` -> ``/build/gh/org/repo``; other paths unchanged."""
    trimmed = path.rstrip("/")
    parts = trimmed.split("/")
    # parts: ["", "build", provider, *rest]
    if len(parts) >= 4 and parts[1] == "build":
        minimum = _REF_PROVIDERS.get(parts[2].lower())
        if minimum is not None and len(parts) - 3 >= minimum:
            return "/".join(parts[:-1])
    return trimmed or "/"


def cache_key(path: str) -> str:
    """The balancing key of a request path: every ref of one repository shares it.

    The request path lowercased; under ``/build/gh`` its last segment (the ref) dropped,
    exactly as the replaced redirector did (so even its quirks, such as a trailing slash
    making the ref part of the key, pick the same member). The one deliberate difference:
    ``gl``, ``gist`` and ``git`` launches drop their ref too, where it only lowercased.
    """
    key = path.lower()
    if key.startswith(_LEGACY_REF_PREFIX):
        return key.rsplit("/", 1)[0]
    parts = key.split("/")
    if len(parts) >= 4 and parts[1] == "build" and parts[2] in _REF_PROVIDERS:
        return repo_path(key)
    return key


def member_hash(key: str, member: str) -> int:
    """The replaced redirector's hash of (key, member): 64 bits of BLAKE2b of ``key-member``."""
    digest = hashlib.blake2b(f"{key}-{member}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_score(key: str, target: Target) -> float:
    """Weighted rendezvous score ``weight / -ln(h / (2**64 - 1))``; the highest wins.

    Computed as the replaced redirector computed it (``weight * (1 / -ln x)``, the same
    float operations, so the same winner even when two scores differ in the last bit), and
    total at the edges, where the formula has none: ``h == 0`` scores 0 (-ln 0 is infinite)
    and ``h`` whose ratio rounds to 1 scores infinity (-ln 1 is 0). Weight 0 scores 0.
    """
    if target.weight <= 0:
        return 0.0
    x = member_hash(key, target.name) / MAX_HASH
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return math.inf
    return target.weight * (1.0 / -math.log(x))


def rendezvous_pick(key: str, targets: Sequence[Target]) -> Target | None:
    """The target with the highest score; on a tie, the greatest name (as the replaced
    redirector's descending sort of (score, name) did), the same on every replica."""
    best: Target | None = None
    best_rank: tuple[float, str] = (-1.0, "")
    for target in targets:
        if target.weight <= 0:
            continue
        rank = (rendezvous_score(key, target), target.name)
        if rank > best_rank:
            best, best_rank = target, rank
    return best


def still_first(key: str, first: Target, joined: Sequence[Target]) -> bool:
    """Whether ``first``, the :func:`rendezvous_pick` of ``key`` among some targets, stays
    its pick once targets other than ``first`` leave and ``joined`` join: a target leaving
    never moves a key it was not the pick of, and one joining takes a key only by ranking
    above its pick. So a router keeps a key's pick across a change of targets for the cost
    of the targets that joined, not of them all."""
    rank = (rendezvous_score(key, first), first.name)
    return all(t.weight <= 0 or (rendezvous_score(key, t), t.name) < rank for t in joined)


def weighted_random_pick(u: float, targets: Sequence[Target]) -> Target | None:
    """Pick by weight with a caller-supplied uniform ``u`` in [0, 1) (the shell owns randomness)."""
    total = sum(t.weight for t in targets if t.weight > 0)
    if total <= 0:
        return None
    point = u * total
    for target in targets:
        if target.weight <= 0:
            continue
        point -= target.weight
        if point < 0:
            return target
    return next(t for t in reversed(targets) if t.weight > 0)
