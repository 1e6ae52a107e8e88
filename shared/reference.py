"""The reference version: which software version members must run to receive launches.

The rule that the replaced redirector got wrong: it refreshed the prime's versions only
when the prime passed its health check. Here versions are observed independently of
health and fullness, the reference carries its age, and a reference older than
``versions.max_age`` (or missing) is *stale*, which suspends version gating (fail open).
A new version becomes the reference only once it has been observed unchanged for
``versions.min_dwell`` seconds, so a rolling deploy that flaps does not flap the reference.
A member may differ from the reference within its keys' ``versions.compatible`` levels
(:mod:`shared.versions`), so members deploying one after another keep their launches.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from shared.config import Compatibility, FederationConfig, ReferencePolicy
from shared.observe import settled_versions
from shared.records import MemberObservation
from shared.versions import compatible


@dataclass(frozen=True)
class Reference:
    """The reference version as evaluated at one instant, with where it came from."""

    policy: ReferencePolicy
    versions: dict[str, str] | None
    keys: tuple[str, ...]  # the keys that members are compared on
    source: str  # human-readable: "prime alpha", "majority of beta, gamma ...", "pinned in config"
    observed_at: float | None
    age: float | None
    stale: bool
    stale_reason: str | None = None
    #: The members whose /versions times make ``observed_at``: a page measures the age of the
    #: reference from their latest records, since a view lasts until a verdict changes.
    members: tuple[str, ...] = ()


def compared_keys(config: FederationConfig, versions: Mapping[str, str] | None) -> tuple[str, ...]:
    """The keys compared against the reference: the configured list, else all of its keys."""
    if config.versions.keys is not None:
        return tuple(config.versions.keys)
    return tuple(sorted(versions)) if versions else ()


def project(versions: Mapping[str, object], keys: tuple[str, ...]) -> dict[str, object]:
    return {key: versions.get(key) for key in keys}


def fresh_versions(
    obs: MemberObservation | None, now: float, max_age: float
) -> dict[str, str] | None:
    """A member's observed versions if they were seen within ``max_age`` seconds."""
    if obs is None or obs.versions is None or obs.versions_at is None:
        return None
    if now - obs.versions_at > max_age:
        return None
    return obs.versions


def reference_version(
    config: FederationConfig, observations: Mapping[str, MemberObservation], now: float
) -> Reference:
    """Evaluate the reference under the configured policy."""
    policy = config.reference_policy
    if policy == "pinned":
        pinned = dict(config.versions.pinned or {})
        return Reference(
            policy,
            pinned,
            compared_keys(config, pinned),
            "pinned in config",
            None,
            None,
            stale=False,
        )
    if policy == "prime":
        return _prime_reference(config, observations, now)
    return _majority_reference(config, observations, now)


def _prime_reference(
    config: FederationConfig, observations: Mapping[str, MemberObservation], now: float
) -> Reference:
    prime = config.prime_name
    assert prime is not None, "config validation guarantees a prime for policy 'prime'"
    obs = observations.get(prime)
    source = f"prime {prime}"
    if obs is None or obs.versions is None or obs.versions_at is None:
        missing = f"the prime {prime} has no observed versions"
        if obs is not None and obs.versions_error:
            missing += f" ({obs.versions_error})"
        return Reference("prime", None, (), source, None, None, stale=True, stale_reason=missing)
    settled = settled_versions(obs, now, config.versions_min_dwell) or obs.versions
    age = max(0.0, now - obs.versions_at)
    max_age = config.versions_max_age
    stale = age > max_age
    reason: str | None = None
    if stale:
        # No age in the words: a reason holds as long as the view, however old that gets.
        reason = f"the prime's versions were not observed in the last {max_age:.0f}s"
        if obs.versions_error:
            reason += f": {obs.versions_error}"
    return Reference(
        "prime",
        dict(settled),
        compared_keys(config, settled),
        source,
        obs.versions_at,
        age,
        stale=stale,
        stale_reason=reason,
        members=(prime,),
    )


def _majority_reference(
    config: FederationConfig, observations: Mapping[str, MemberObservation], now: float
) -> Reference:
    """The versions run by the largest configured weight among fresh version records.

    Ties go to the group with more members, then to the lexicographically smallest
    canonical JSON of the versions, so every replica reaches the same answer.
    """
    max_age = config.versions_max_age
    groups: dict[str, list[str]] = {}
    sample: dict[str, dict[str, str]] = {}
    for name in config.members:
        obs = observations.get(name)
        versions = fresh_versions(obs, now, max_age) and settled_versions(
            obs, now, config.versions_min_dwell
        )
        if versions is None:
            continue
        keys = compared_keys(config, versions)
        canon = json.dumps(project(versions, keys), sort_keys=True)
        groups.setdefault(canon, []).append(name)
        sample.setdefault(canon, versions)
    if not groups:
        return Reference(
            "majority",
            None,
            (),
            "majority",
            None,
            None,
            stale=True,
            stale_reason=f"no member has versions observed within {max_age:.0f}s",
        )

    def rank(canon: str) -> tuple[float, int, str]:
        # fsum is exactly rounded, so the sum (and a tie) does not depend on member order
        weight = math.fsum(config.members[n].weight for n in groups[canon])
        return (-weight, -len(groups[canon]), canon)

    best = min(groups, key=rank)
    names = groups[best]
    weight = math.fsum(config.members[n].weight for n in names)
    total = math.fsum(m.weight for m in config.members.values())
    observed_at = min(observations[n].versions_at or now for n in names)
    versions = sample[best]
    if config.versions.keys is not None:
        versions = {k: v for k, v in versions.items() if k in config.versions.keys}
    return Reference(
        "majority",
        dict(versions),
        compared_keys(config, versions),
        f"majority of {', '.join(sorted(names))} (weight {weight:g} of {total:g})",
        observed_at,
        max(0.0, now - observed_at),
        stale=False,
        members=tuple(sorted(names)),
    )


def version_differences(
    member_versions: Mapping[str, str] | None,
    reference: Reference,
    levels: Mapping[str, Compatibility] | None = None,
) -> tuple[str, ...]:
    """The compared keys on which a member differs from the reference ("*" if unknown); a
    version its key's ``versions.compatible`` level allows is no difference."""
    if reference.versions is None:
        return ()
    if member_versions is None:
        return ("*",)
    allowed = compatible_versions(member_versions, reference, levels)
    return tuple(
        key
        for key in reference.keys
        if member_versions.get(key) != reference.versions.get(key) and key not in allowed
    )


def compatible_versions(
    member_versions: Mapping[str, str] | None,
    reference: Reference,
    levels: Mapping[str, Compatibility] | None,
) -> tuple[str, ...]:
    """The compared keys on which a member runs another version than the reference, but one
    that its key's ``versions.compatible`` level allows (a key not named: none)."""
    if reference.versions is None or member_versions is None or not levels:
        return ()
    ref = reference.versions
    found = []
    for key in reference.keys:
        version, wanted = member_versions.get(key), ref.get(key)
        if version is None or wanted is None or version == wanted:
            continue
        if compatible(version, wanted, levels.get(key, "exact")):
            found.append(key)
    return tuple(found)
