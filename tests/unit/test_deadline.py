"""When time alone next changes a verdict (shared/deadline.py): before the deadline every
verdict stays as it was, at the deadline one of them flips; the outage deadline likewise."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import FederationConfig, parse_config
from shared.deadline import (
    first_instant,
    freshness,
    next_deadline,
    outage_deadline,
    record_deadline,
)
from shared.evaluate import View, evaluate
from shared.records import CheckerHeartbeat, HealthObservation, MemberObservation

T0 = 1_700_000_000.0
V1 = {"binderhub": "1.0"}
V2 = {"binderhub": "2.0"}
NAMES = ("a", "b", "c")


def config(policy: str = "prime", **settings: Any) -> FederationConfig:
    members = {
        n: {"url": f"https://{n}.example.org", "weight": 10, "prime": n == "a"} for n in NAMES
    }
    versions: dict[str, Any] = {"reference": policy}
    if policy == "pinned":
        versions["pinned"] = V1
    return parse_config({"members": members, "versions": versions, **settings}, "test")


def record(
    name: str,
    checked_at: float,
    versions_at: float | None = None,
    changed_at: float | None = None,
    versions: dict[str, str] | None = V1,
    status: str = "ok",
) -> MemberObservation:
    health = HealthObservation(status, (), 10, 100, checked_at)  # type: ignore[arg-type]
    return MemberObservation(
        member=name,
        checked_at=checked_at,
        health=health,
        versions=versions,
        versions_at=versions_at if versions is not None else None,
        versions_changed_at=changed_at,
        settled_versions=V2 if changed_at is not None else None,
    )


def verdicts(view: View) -> tuple[Any, ...]:
    """Everything a launch or a state on a page depends on (reason texts aside)."""
    return (
        tuple((m.state, m.excluded_by) for m in view.members),
        view.targets,
        view.gate_suspended,
        view.fallback_active,
        view.outage_active,
        view.reference.versions,
        view.reference.stale,
    )


def judged(cfg: FederationConfig, obs: dict[str, MemberObservation], as_of: float) -> View:
    """The view of ``obs`` with a heartbeat at ``as_of``, evaluated at that instant."""
    return evaluate(cfg, obs, {}, CheckerHeartbeat("c", as_of), as_of)


times = st.floats(T0 - 200, T0 + 50)


@st.composite
def federations(draw: st.DrawFn) -> tuple[FederationConfig, dict[str, MemberObservation]]:
    period = draw(st.sampled_from([1.0, 10.0, 0.3]))
    cfg = config(draw(st.sampled_from(["prime", "majority", "pinned"])), check={"period": period})
    if draw(st.booleans()):  # any limit, even one the config's checks would refuse
        cfg = cfg.model_copy(update={"record_max_age": draw(st.floats(0.1, 100))})
    if draw(st.booleans()):
        cfg = cfg.model_copy(
            update={"versions": cfg.versions.model_copy(update={"max_age": draw(st.floats(1, 90))})}
        )
    obs = {}
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True)):
        obs[name] = record(
            name,
            draw(times),
            draw(times),
            draw(st.none() | times),
            draw(st.sampled_from([V1, V2, None])),
            draw(st.sampled_from(["ok", "ok", "unhealthy"])),
        )
    return cfg, obs


@settings(max_examples=300, deadline=None)
@given(federations(), times, st.floats(0, 1, exclude_max=True))
def test_nothing_changes_before_the_deadline_and_something_at_it(
    federation: tuple[FederationConfig, dict[str, MemberObservation]], as_of: float, u: float
) -> None:
    cfg, obs = federation
    deadline = next_deadline(cfg, obs, as_of)
    assert deadline >= as_of
    then = verdicts(judged(cfg, obs, as_of))
    if math.isinf(deadline):
        assert verdicts(judged(cfg, obs, as_of + 1e6)) == then
        return
    before = math.nextafter(deadline, -math.inf)
    for t in {as_of + u * (deadline - as_of), before}:
        if as_of <= t < deadline:
            assert verdicts(judged(cfg, obs, t)) == then
    # At the deadline some record's time-based verdict flips (the view may or may not show it).
    flipped = [n for n in obs if freshness(cfg, obs[n], deadline) != freshness(cfg, obs[n], as_of)]
    assert flipped


@settings(max_examples=200, deadline=None)
@given(times, st.floats(0.01, 500), st.sampled_from(["keep", "all"]))
def test_the_outage_begins_exactly_at_its_deadline(
    at: float, max_staleness: float, policy: str
) -> None:
    cfg = config(outage={"policy": policy, "max_staleness": max_staleness})
    heartbeat = CheckerHeartbeat("c", at)
    deadline = outage_deadline(cfg, heartbeat)
    obs = {n: record(n, at, at) for n in NAMES}
    assert evaluate(cfg, obs, {}, heartbeat, deadline).outage_active
    before = math.nextafter(deadline, -math.inf)
    assert not evaluate(cfg, obs, {}, heartbeat, before).outage_active
    assert not evaluate(cfg, obs, {}, heartbeat, at).outage_active


def test_without_a_heartbeat_there_is_no_outage_deadline() -> None:
    assert outage_deadline(config(), None) == math.inf


def test_the_deadline_of_a_record_is_its_first_rule_to_flip() -> None:
    cfg = config(check={"period": 10}, record_max_age=25)  # versions: max age 30, dwell 20
    fresh = record("a", T0, T0)
    assert record_deadline(cfg, fresh, T0) == math.nextafter(T0 + 25, math.inf)  # stale: > 25
    older_versions = record("a", T0, T0 - 10)
    assert record_deadline(cfg, older_versions, T0) == math.nextafter(T0 + 20, math.inf)
    dwelling = record("a", T0, T0, changed_at=T0 - 5)
    assert record_deadline(cfg, dwelling, T0) == T0 + 15  # settled once 20s unchanged: >=
    stale = record("a", T0 - 100, T0 - 100)
    assert record_deadline(cfg, stale, T0) == math.inf  # every rule has flipped already
    assert next_deadline(cfg, {"a": fresh, "b": dwelling}, T0) == T0 + 15
    assert next_deadline(cfg, {"zz": dwelling}, T0) == math.inf  # not a member: not judged
    assert next_deadline(cfg, {}, T0) == math.inf


def test_a_record_without_versions_has_only_its_staleness_deadline() -> None:
    cfg = config(check={"period": 10})
    bare = record("a", T0, versions=None)
    assert record_deadline(cfg, bare, T0 - 50) == math.nextafter(T0 + 30, math.inf)
    assert freshness(cfg, None, T0) == (True, False, True, False, 1.0)


def test_first_instant_is_exact_whatever_the_rounding() -> None:
    start, limit = 0.1, 0.2  # 0.1 + 0.2 rounds up: the boundary is not at start + limit
    instant = first_instant(lambda t: t - start > limit, -1.0, start + limit)
    assert instant - start > limit
    assert not math.nextafter(instant, -math.inf) - start > limit
    start, limit = 264709.9830371171, 603089.3158338775  # start + limit rounds up: >= holds
    instant = first_instant(lambda t: t - start >= limit, 0.0, start + limit)  # already below
    assert instant - start >= limit and instant < start + limit
    assert not math.nextafter(instant, -math.inf) - start >= limit
    assert first_instant(lambda t: t >= 5.0, 7.0, 5.0) == 7.0  # never before ``after``
    below = math.nextafter(math.nextafter(5.0, -math.inf), -math.inf)
    assert first_instant(lambda t: t >= 5.0, 0.0, below) == 5.0  # a boundary above ``near``
