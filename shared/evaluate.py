"""The evaluated view: every member's state with reasons, and who can receive launches.

``evaluate(config, observations, drains, heartbeat, now)`` is the one pure function that
answers "why did this request go there?". Each exclusion rule is a named function; the
state shown is the first applicable one in :data:`STATES` order, and every applicable
reason is kept so the status view shows all of them (a member can be full *and* mismatched).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple, get_args

from shared.balance import Target, cache_key, rendezvous_pick, weighted_random_pick
from shared.bounded import Launches, bounded_pick
from shared.capacity import NO_LAUNCHES, SentLaunches
from shared.config import Compatibility, FallbackPolicy, FederationConfig, MemberConfig
from shared.records import CheckerHeartbeat, Drain, LaunchOutcomes, MemberObservation
from shared.reference import (
    Reference,
    compatible_versions,
    fresh_versions,
    reference_version,
    version_differences,
)
from shared.rules import (
    capacity_share,
    drained_reason,
    failing_reason,
    full_reason,
    heartbeat_too_old,
    judged_at,
    stale_reason,
    unhealthy_reason,
    unreachable_reason,
    version_mismatch_reason,
)
from shared.slowstart import STEPS, ramp_factor, ramp_step

State = Literal[
    "drained",
    "stale",
    "unreachable",
    "unhealthy",
    "failing",
    "full",
    "version_mismatch",
    "eligible",
]
#: Every state, in precedence order: a member shows the first one that applies.
STATES: tuple[State, ...] = get_args(State)
DecisionReason = Literal["balancer", "cookie", "fallback", "outage"]


# --- the view -----------------------------------------------------------------------------


class MemberView(NamedTuple):
    """One member as the routers see it now.

    A named tuple, not a frozen dataclass: a view holds one per member, and a frozen
    dataclass's 18 guarded field assignments made up a fifth of evaluating a 1,000-member
    federation (docs/benchmarks.md). Times are kept as timestamps, never as ages: a view
    lasts until something changes, and a page measures ages when it is asked."""

    name: str
    url: str
    weight: float
    prime: bool
    state: State
    reasons: tuple[str, ...]
    excluded_by: tuple[State, ...]  # every rule that excludes it, in precedence order
    versions: dict[str, str] | None
    version_differences: tuple[str, ...]
    #: The compared keys on which it runs another version than the reference, but one that
    #: ``versions.compatible`` allows: no difference, shown so a page can say why.
    compatible_versions: tuple[str, ...]
    total_pods: int | None
    quota: int | None
    checked_at: float | None  # when the record was last refreshed
    health_at: float | None  # when /health was last observed
    versions_at: float | None  # when /versions last answered
    last_error: str | None
    #: What launches it takes: its weight x its capacity share x its slow-start ramp while
    #: eligible, else 0.
    effective_weight: float
    health_url: str  # the URL that last answered /health (after redirects), else configured
    versions_url: str
    outcomes: LaunchOutcomes | None  # its launches as its metrics count them (None: not read)
    capacity_share: float | None  # its free pods over its quota (None: reports no quota)
    pending_launches: int  # launches taken to have reached it since its /health report
    eligible_since: float | None  # the start of its slow start (shared.slowstart)
    ramp: float | None  # its slow-start factor while it ramps (None: not ramping)

    @property
    def eligible(self) -> bool:
        return self.state == "eligible"


@dataclass(frozen=True)
class Decision:
    """Where one request goes, and why; ``member`` None means nobody can take it."""

    member: str | None
    url: str | None
    reason: DecisionReason | None


@dataclass(frozen=True)
class View:
    """The complete evaluated federation at one instant: what a router serves from."""

    config: FederationConfig
    evaluated_at: float
    members: tuple[MemberView, ...]
    reference: Reference
    gate_suspended: bool
    gate_reason: str | None
    fallback_active: bool
    fallback_policy: FallbackPolicy
    fallback_reason: str | None
    targets: tuple[Target, ...]  # who receives launches now (eligible, or the fallback set)
    heartbeat: CheckerHeartbeat | None
    outage_active: bool = False  # the checker's heartbeat is too old: outage.policy applies
    outage_reason: str | None = None
    #: ``targets`` by member URL, derived on construction: the sticky-cookie check is a
    #: dict lookup however many members there are (member URLs are unique in a config).
    targets_by_url: Mapping[str, Target] = field(init=False, repr=False, compare=False)
    #: ``members`` by name, derived likewise: comparing two views member by member (the
    #: checker's change log, history) stays linear in the size of the federation.
    members_by_name: Mapping[str, MemberView] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets_by_url", {t.url: t for t in self.targets})
        object.__setattr__(self, "members_by_name", {m.name: m for m in self.members})

    def member(self, name: str) -> MemberView | None:
        return self.members_by_name.get(name)

    @property
    def eligible(self) -> tuple[MemberView, ...]:
        return tuple(m for m in self.members if m.eligible)

    @property
    def home(self) -> MemberView | None:
        """The member that serves non-launch pages: the prime while reachable, else the
        highest-weight eligible member."""
        for m in self.members:
            if m.prime and "unreachable" not in m.excluded_by and m.state != "stale":
                return m
        eligible = sorted(self.eligible, key=lambda m: (-m.weight, m.name))
        return eligible[0] if eligible else None

    def pick(
        self,
        path: str,
        sticky_url: str | None = None,
        u: float = 0.0,
        launches: Launches | None = None,
    ) -> Decision:
        """Choose the member for a request path; ``u`` is a uniform draw for ``random``,
        ``launches`` the router's recent launches for ``bounded``."""
        return pick(self, path, sticky_url, u, launches)


def member_view(
    name: str,
    cfg: MemberConfig,
    obs: MemberObservation | None,
    drain: Drain | None,
    reference: Reference,
    limits: Limits,
    as_of: float,
    gate: bool,
    pending: int,
) -> MemberView:
    # Compare only versions seen recently: an old observation says nothing about today.
    versions = fresh_versions(obs, as_of, limits.versions_max_age)
    differences = version_differences(versions, reference, limits.compatible)
    # Every rule, in STATES order; the state shown is the first that applies.
    verdicts: tuple[tuple[State, str | None], ...] = (
        ("drained", drained_reason(drain)),
        ("stale", stale_reason(obs, as_of, limits.stale_after)),
        ("unreachable", unreachable_reason(obs)),
        ("unhealthy", unhealthy_reason(obs)),
        ("failing", failing_reason(obs, as_of)),
        ("full", full_reason(obs, limits.pod_headroom, pending)),
        ("version_mismatch", version_mismatch_reason(differences, reference) if gate else None),
    )
    excluded_by = tuple([state for state, reason in verdicts if reason is not None])
    state: State = excluded_by[0] if excluded_by else "eligible"
    health = obs.health if obs else None
    # From the report alone: launches in flight differ from router to router, and every
    # router must weigh a member alike to give a repository the same member.
    capacity = capacity_share(obs, limits.pod_headroom)
    since, ramp = _slow_start(obs, state == "eligible", as_of, limits.slow_start)
    weight = cfg.weight * (1.0 if capacity is None else capacity) * (ramp or 1.0)
    return MemberView(
        name=name,
        url=cfg.url,
        weight=cfg.weight,
        prime=cfg.prime,
        state=state,
        reasons=tuple([reason for _, reason in verdicts if reason is not None]),
        excluded_by=excluded_by,
        versions=dict(obs.versions) if obs and obs.versions else None,
        version_differences=differences,
        compatible_versions=compatible_versions(versions, reference, limits.compatible),
        total_pods=health.total_pods if health else None,
        quota=health.quota if health else None,
        checked_at=obs.checked_at if obs else None,
        health_at=health.observed_at if health else None,
        versions_at=obs.versions_at if obs else None,
        last_error=obs.last_error if obs else None,
        effective_weight=weight if state == "eligible" else 0.0,
        health_url=(obs.health_url if obs else None) or cfg.health,
        versions_url=(obs.versions_url if obs else None) or cfg.versions,
        outcomes=obs.outcomes if obs else None,
        capacity_share=capacity,
        pending_launches=pending,
        eligible_since=since,
        ramp=ramp,
    )


def _slow_start(
    obs: MemberObservation | None, eligible: bool, as_of: float, slow_start: float
) -> tuple[float | None, float | None]:
    """When a member's slow start began, and its factor while it ramps (None: it does not)."""
    since = obs.eligible_since if obs else None
    if not eligible:
        return since, None
    if since is None:
        # The checker's last view found it excluded (a drain lifted since): it ramps from
        # now until the checker publishes the start, never from its full weight.
        since = as_of
    step = ramp_step(since, as_of, slow_start)
    return since, None if step == STEPS else ramp_factor(step)


class Limits(NamedTuple):
    """The config's limits that every member's rules read, derived once per evaluation."""

    versions_max_age: float
    stale_after: float
    pod_headroom: int | str
    compatible: Mapping[str, Compatibility]  # versions.compatible
    slow_start: float

    @classmethod
    def of(cls, config: FederationConfig) -> Limits:
        return cls(
            config.versions_max_age,
            config.stale_after,
            config.pod_headroom,
            config.versions.compatible,
            config.slow_start,
        )


def age(now: float, at: float | None) -> float | None:
    """Seconds from ``at`` to ``now`` (never negative; None when never)."""
    return None if at is None else max(0.0, now - at)


def evaluate(
    config: FederationConfig,
    observations: Mapping[str, MemberObservation],
    drains: Mapping[str, Drain],
    heartbeat: CheckerHeartbeat | None,
    now: float,
    sent: SentLaunches = NO_LAUNCHES,
) -> View:
    """Evaluate every member and decide who receives launches. Pure: no I/O, no clock.

    The freshness rules (a stale record, a stale reference, versions too old to compare)
    are judged as of the checker's last heartbeat, in the checker's own clock: "has the
    checker refreshed this?" Whether the checker (or Redis) is gone at all is judged from
    the heartbeat's age alone (:func:`_in_outage`). The view keeps timestamps, not ages:
    whoever shows it measures ages against its own clock. When time alone will next change
    a verdict is :mod:`shared.deadline`'s answer. ``sent``: a router's launches since each
    member's last report, which count against its free pods (:mod:`shared.capacity`).
    """
    as_of = judged_at(config, heartbeat, now)
    reference = reference_version(config, observations, as_of)
    reference = replace(reference, age=age(now, reference.observed_at))
    limits = Limits.of(config)
    get_observation, get_drain, pending = observations.get, drains.get, sent.pending

    def evaluate_members(gate_on: bool) -> tuple[MemberView, ...]:
        return tuple(
            [
                member_view(
                    name,
                    cfg,
                    get_observation(name),
                    get_drain(name),
                    reference,
                    limits,
                    as_of,
                    gate_on,
                    pending(name),
                )
                for name, cfg in config.members.items()
            ]
        )

    members, gate_reason = _gated_members(reference, evaluate_members)
    targets, fallback_reason = launch_targets(config.fallback_policy, members)
    view = View(
        config=config,
        evaluated_at=now,
        members=members,
        reference=reference,
        gate_suspended=gate_reason is not None,
        gate_reason=gate_reason,
        fallback_active=fallback_reason is not None,
        fallback_policy=config.fallback_policy,
        fallback_reason=fallback_reason,
        targets=targets,
        heartbeat=heartbeat,
    )
    return _in_outage(view) if heartbeat_too_old(config, heartbeat, now) else view


def _in_outage(view: View) -> View:
    """The view once the heartbeat is older than ``outage.max_staleness``: ``keep`` goes on
    serving it as of the last heartbeat; ``all`` sends launches to every member that is
    not drained, by weight (and shows the records as they age)."""
    config = view.config
    # No age in the words: a reason holds as long as the view, however old that gets.
    reason = f"checker heartbeat is older than {config.max_staleness:.0f}s: " + (
        "serving the last known good view"
        if config.outage.policy == "keep"
        else "sending launches to every member that is not drained"
    )
    if config.outage.policy == "keep":
        return replace(view, outage_active=True, outage_reason=reason)
    targets = tuple(Target(m.name, m.url, m.weight) for m in view.members if m.state != "drained")
    return replace(
        view,
        targets=targets,
        fallback_active=False,
        fallback_reason=None,
        outage_active=True,
        outage_reason=reason,
    )


def _gated_members(
    reference: Reference, evaluate_members: Callable[[bool], tuple[MemberView, ...]]
) -> tuple[tuple[MemberView, ...], str | None]:
    """The members judged with version gating, or without it and the reason it is
    suspended: a stale reference, or gating alone would leave nobody eligible."""
    if reference.stale:
        return evaluate_members(False), f"reference version is stale: {reference.stale_reason}"
    members = evaluate_members(True)
    if gating_leaves_nobody(members):
        # Serve the otherwise-eligible members.
        reason = "version gating would exclude every otherwise eligible member"
        return evaluate_members(False), reason
    return members, None


def gating_leaves_nobody(members: tuple[MemberView, ...]) -> bool:
    """Version gating alone keeps every member out: nobody is eligible, and some member is
    excluded by its version alone."""
    return not any(m.eligible for m in members) and any(
        m.excluded_by == ("version_mismatch",) for m in members
    )


def launch_targets(
    policy: FallbackPolicy, members: tuple[MemberView, ...]
) -> tuple[tuple[Target, ...], str | None]:
    """Who receives launches: the eligible members, else the fallback set, with the reason
    the fallback is active (None: it is not)."""
    targets = tuple(Target(m.name, m.url, m.effective_weight) for m in members if m.eligible)
    if targets:
        return targets, None
    targets = fallback_targets(policy, members)
    return targets, f"no member is eligible; fallback '{policy}' sends launches to " + (
        ", ".join(t.name for t in targets) if targets else "nobody (503)"
    )


def fallback_targets(policy: FallbackPolicy, members: tuple[MemberView, ...]) -> tuple[Target, ...]:
    """Who receives launches when nobody is eligible. Drained members never do."""
    if policy == "prime":
        return tuple(
            Target(m.name, m.url, 1.0) for m in members if m.prime and m.state != "drained"
        )
    if policy == "all":
        return tuple(
            Target(m.name, m.url, m.weight)
            for m in members
            if m.state != "drained" and "unreachable" not in m.excluded_by
        )
    return ()


def pick(
    view: View, path: str, sticky_url: str | None, u: float, launches: Launches | None = None
) -> Decision:
    """The balancing decision for one request: cookie, else balancer, else fallback."""
    return sticky_decision(view, sticky_url) or balance(view, path, u, launches)


def sticky_decision(view: View, sticky_url: str | None) -> Decision | None:
    """The sticky cookie's member, honoured only while it is a target and no fallback is
    active (a fallback set is not a choice a cookie may pin); else None."""
    if sticky_url is None or view.fallback_active:
        return None
    target = view.targets_by_url.get(sticky_url)
    return None if target is None else Decision(target.name, target.url, "cookie")


def balance(view: View, path: str, u: float, launches: Launches | None = None) -> Decision:
    """The balancer's decision for a request path, ignoring any cookie. With ``rendezvous``
    it depends on the path (its cache key) and the targets only, so a caller may keep it
    for as long as the targets stay the same; with ``random`` it depends on ``u``; with
    ``bounded`` on the router's recent ``launches`` too (none: the rendezvous pick)."""
    policy = view.config.load_balancer
    if policy == "random":
        chosen = weighted_random_pick(u, view.targets)
    elif policy == "bounded":
        factor = view.config.bounded_load.factor
        chosen = bounded_pick(cache_key(path), view.targets, factor, launches)
    else:
        chosen = rendezvous_pick(cache_key(path), view.targets)
    if chosen is None:
        return Decision(None, None, None)
    return Decision(chosen.name, chosen.url, balancer_reason(view))


def balancer_reason(view: View) -> DecisionReason:
    """Why the balancer's member was chosen: the balancer, or the fallback or outage set
    it was chosen from."""
    if view.fallback_active:
        return "fallback"
    if view.outage_active:
        return "outage"
    return "balancer"
