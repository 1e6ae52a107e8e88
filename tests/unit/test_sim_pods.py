"""A simulated member's launched pods (``pod_lifetime``): each launch that reached ``ready``
runs a pod until its lifetime is over, on top of the pods set by hand, and only running
pods are kept."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fedredirect.memberstate import MemberSimState, add_pod, is_full, launched_pods, pods

# A launch: how long after the one before it reached ready, and the pod_lifetime then
# (0 now and then: the setting is changed live, and 0 starts no pod).
launches = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=100, allow_nan=False),
        st.one_of(st.just(0.0), st.floats(min_value=0.001, max_value=100, allow_nan=False)),
    ),
    max_size=40,
)


def run(steps: list[tuple[float, float]]) -> tuple[list[float], list[tuple[float, float]]]:
    """The ends after each launch in turn, and each launch as (when, lifetime)."""
    ends: list[float] = []
    at, done = 0.0, []
    for gap, lifetime in steps:
        at += gap
        ends = add_pod(ends, at, lifetime)
        done.append((at, lifetime))
    return ends, done


@given(launches, st.floats(min_value=0, max_value=300, allow_nan=False))
def test_a_pod_runs_from_its_launch_for_its_lifetime(
    steps: list[tuple[float, float]], later: float
) -> None:
    ends, done = run(steps)
    now = (done[-1][0] if done else 0.0) + later
    running = sum(1 for at, lifetime in done if lifetime > 0 and at + lifetime > now)
    assert launched_pods(ends, now) == running


@given(launches)
def test_only_running_pods_are_kept(steps: list[tuple[float, float]]) -> None:
    """Memory grows with the pods running, not with the launches ever made."""
    ends, done = run(steps)
    if done:
        last = done[-1][0]
        assert all(end > last for end in ends)
        assert len(ends) == launched_pods(ends, last)


@given(
    st.integers(min_value=0, max_value=200),
    st.one_of(st.none(), st.integers(min_value=0, max_value=200)),
    st.integers(min_value=0, max_value=50),
)
def test_launched_pods_add_to_the_baseline_against_the_quota(
    baseline: int, quota: int | None, launched: int
) -> None:
    ends: list[float] = []
    for i in range(launched):
        ends = add_pod(ends, float(i), 1000.0)
    state = MemberSimState("m", total_pods=baseline, quota=quota, pod_ends=ends)
    assert pods(state, launched) == baseline + launched
    assert is_full(state, launched) == (quota is not None and baseline + launched >= quota)
    assert pods(state, 5000.0) == baseline  # all ended: the baseline alone
    assert is_full(state, 5000.0) == (quota is not None and baseline >= quota)


def test_what_a_reader_expects() -> None:
    assert add_pod([], 10.0, 0.0) == []  # off: launches start no pod
    assert add_pod([], 10.0, 0.5) == [10.5]
    assert add_pod([10.5, 12.0], 11.0, 1.0) == [12.0, 12.0]  # the one ended is dropped
    assert launched_pods([10.5], 10.4) == 1
    assert launched_pods([10.5], 10.5) == 0  # gone at its end
    state = MemberSimState("m", total_pods=8, quota=10, pod_ends=[20.0])
    assert (pods(state, 19.0), is_full(state, 19.0)) == (9, False)
    state.pod_ends = add_pod(state.pod_ends, 19.0, 5.0)
    assert (pods(state, 19.0), is_full(state, 19.0)) == (10, True)
    assert (pods(state, 20.0), is_full(state, 20.0)) == (9, False)
