"""Balancing: which of the target members gets one request.

Weighted rendezvous hashing gives every replica the same answer for the same key and
target set, and when a member leaves only its own keys move. The cache key groups
requests that should land together (every ref of one repository).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

# Providers whose last path segment is a ref, with the minimum number of segments
# (after the provider) for the last one to be a ref.
_REF_PROVIDERS = {"gh": 3, "gist": 3, "gl": 2, "git": 2}
_TWO_52 = float(2**52)


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
    """The balancing key of a request path: lowercased, with the ref dropped."""
    return repo_path(path).lower()


def unit_hash(key: str, member: str) -> float:
    """A uniform hash of (key, member) mapped into the open interval (0, 1)."""
    digest = hashlib.blake2b(f"{key}\x00{member}".encode(), digest_size=8).digest()
    # Keep the top 52 bits of the 64-bit hash: x + 0.5 is then exactly representable, so
    # h is never 0 or 1 (with 53 bits, (2**53 - 1) + 0.5 rounds up to 2**53).
    return ((int.from_bytes(digest, "big") >> 12) + 0.5) / _TWO_52


def rendezvous_score(key: str, target: Target) -> float:
    """Weighted rendezvous score: weight / -ln(h). Higher wins; weight 0 never wins."""
    if target.weight <= 0:
        return 0.0
    return target.weight / -math.log(unit_hash(key, target.name))


def rendezvous_pick(key: str, targets: Sequence[Target]) -> Target | None:
    best: Target | None = None
    best_score = -1.0
    for target in targets:
        score = rendezvous_score(key, target)
        if score > best_score or (score == best_score and best and target.name < best.name):
            best, best_score = target, score
    return best if best is not None and best.weight > 0 else None


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
