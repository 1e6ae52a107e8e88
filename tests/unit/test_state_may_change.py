"""Which new records make a router or the checker evaluate its view at once
(``state_may_change``, ``shared.keeper.may_move_a_state``), and that the others could not
have moved a state anyway."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import parse_config
from shared.evaluate import evaluate
from shared.keeper import may_move_a_state
from shared.records import CheckerHeartbeat, Drain, HealthObservation, MemberObservation
from shared.rules import state_may_change
from shared.store import Snapshot

NOW = 1_700_000_000.0
CONFIG = parse_config(
    {
        "pod_headroom": 10,
        "members": {
            "alpha": {"url": "https://alpha.example.org", "weight": 50, "prime": True},
            "beta": {"url": "https://beta.example.org", "weight": 50},
        },
    }
)


def record(name: str, at: float = NOW, pods: int = 10, **changes: object) -> MemberObservation:
    health = HealthObservation("ok", (), pods, 100, at)
    obs = MemberObservation(
        member=name,
        checked_at=at,
        health=health,
        versions={"binderhub": "1.0"},
        versions_at=at,
    )
    return replace(obs, **changes)  # type: ignore[arg-type]


def test_a_new_check_time_or_pod_count_within_its_capacity_step_moves_nothing() -> None:
    old = record("beta")  # 10 pods of 100, headroom 10: 80 free, a share of 16/20
    assert not state_may_change(old, record("beta", at=NOW + 10), 10)
    assert not state_may_change(old, record("beta", at=NOW + 10, pods=14), 10)  # 76: 16/20
    assert state_may_change(old, record("beta", at=NOW + 10, pods=15), 10)  # 75: 15/20
    assert state_may_change(old, record("beta", at=NOW + 10, pods=50), 10)


def test_a_full_member_checked_again_still_full_moves_nothing() -> None:
    old = record("beta", pods=90)  # 90 + headroom 10 >= 100: full
    assert not state_may_change(old, record("beta", at=NOW + 10, pods=95), 10)
    assert state_may_change(old, record("beta", at=NOW + 10, pods=85), 10)  # room again


def test_the_start_of_a_slow_start_moves_a_weight() -> None:
    old = record("beta", eligible_since=NOW - 5)
    assert state_may_change(old, record("beta", at=NOW + 10, eligible_since=None), 10)
    assert not state_may_change(old, record("beta", at=NOW + 10, eligible_since=NOW - 5), 10)


def test_what_can_move_a_state() -> None:
    old = record("beta")
    assert state_may_change(None, old, 10)
    assert state_may_change(old, record("beta", pods=90), 10)  # full: 90 + 10 >= 100
    assert state_may_change(old, record("beta", versions={"binderhub": "2.0"}), 10)
    assert state_may_change(old, record("beta", last_error="timeout"), 10)
    assert state_may_change(old, record("beta", settled_versions={"binderhub": "1.0"}), 10)
    assert state_may_change(old, record("beta", health=None), 10)
    for status, reasons in (("unhealthy", ("hub down",)), ("unreachable", ()), ("ok", ("x",))):
        health = HealthObservation(status, reasons, 10, 100, NOW)  # type: ignore[arg-type]
        assert state_may_change(old, record("beta", health=health), 10)


@settings(max_examples=200, deadline=None)
@given(
    pods=st.integers(0, 120),
    new_pods=st.integers(0, 120),
    later=st.floats(0, 5),
)
def test_a_routine_change_evaluates_as_before(pods: int, new_pods: int, later: float) -> None:
    """Evaluated at the same instant, a routine change leaves every state as it was."""
    old = {"alpha": record("alpha"), "beta": record("beta", pods=pods)}
    new = {**old, "beta": record("beta", at=NOW + later, pods=new_pods)}
    heartbeat = CheckerHeartbeat("c", NOW + 5, fence=1)
    if state_may_change(old["beta"], new["beta"], CONFIG.pod_headroom):
        return
    before = evaluate(CONFIG, old, {}, heartbeat, NOW + 6)
    after = evaluate(CONFIG, new, {}, heartbeat, NOW + 6)
    assert [m.state for m in before.members] == [m.state for m in after.members]
    assert before.targets == after.targets


def snapshot(observations: dict[str, MemberObservation], **changes: object) -> Snapshot:
    snap = Snapshot(
        CONFIG, observations, CheckerHeartbeat("c", NOW, fence=1), {}, 7, config_hash="h1"
    )
    return replace(snap, **changes)  # type: ignore[arg-type]


def test_may_move_a_state_compares_only_the_records_a_read_replaced() -> None:
    alpha, beta = record("alpha"), record("beta")
    held = snapshot({"alpha": alpha, "beta": beta})
    assert may_move_a_state(None, held)
    routine = snapshot({"alpha": alpha, "beta": record("beta", at=NOW + 1)}, generation=8)
    assert not may_move_a_state(held, routine)
    assert may_move_a_state(held, snapshot({"alpha": alpha, "beta": record("beta", pods=95)}))
    assert may_move_a_state(held, snapshot({"alpha": alpha}))  # a member gone
    assert may_move_a_state(held, replace(held, drains={"beta": Drain("beta", "", NOW)}))
    assert may_move_a_state(held, replace(held, config_hash="h2"))
    assert may_move_a_state(held, replace(held, heartbeat=None))
    # a full read: new objects everywhere, equal in what matters
    reread = snapshot({"alpha": record("alpha"), "beta": record("beta", at=NOW + 1)})
    assert not may_move_a_state(held, reread)
