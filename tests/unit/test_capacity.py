"""Capacity-aware weights (shared.capacity, issue 18): a member's free share of its quota,
and the room a router has left before a burst could overfill it."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from shared.capacity import (
    STEPS,
    SentLaunches,
    free_pods,
    free_share,
    headroom_pods,
    room,
)
from shared.evaluate import evaluate
from tests.support.builders import NOW, make_config, make_obs

quotas = st.integers(0, 500)
headrooms = st.integers(0, 50) | st.sampled_from(["0%", "10%", "12.5%", "50%", "100%"])


def test_a_share_of_the_quota_is_rounded_up_to_whole_pods() -> None:
    assert headroom_pods("10%", 20) == 2
    assert headroom_pods("15%", 20) == 3
    assert headroom_pods("0.5%", 100) == 1
    assert headroom_pods(7, 20) == 7


def test_a_quota_20_member_with_a_10_percent_headroom_takes_launches_until_18_pods() -> None:
    assert [free_pods(pods, 20, "10%") for pods in (0, 17, 18)] == [18, 1, 0]
    assert free_share(0, 20, "10%") == 0.9
    assert free_share(17, 20, "10%") == 0.05
    assert free_share(18, 20, "10%") == 0.0


@given(pods=st.integers(0, 600), quota=quotas, headroom=headrooms)
def test_the_free_share_is_the_free_pods_over_the_quota_in_twentieths_rounded_up(
    pods: int, quota: int, headroom: int | str
) -> None:
    free = free_pods(pods, quota, headroom)
    share = free_share(pods, quota, headroom)
    assert 0.0 <= share <= 1.0
    assert (share == 0.0) == (free <= 0)
    assert share * STEPS == int(share * STEPS)  # a whole number of steps
    if free > 0:
        exact = Fraction(free, quota)
        assert exact <= Fraction(share).limit_denominator(STEPS) < exact + Fraction(1, STEPS)
    assert free_share(pods + 1, quota, headroom) <= share  # more pods never free capacity


@given(
    pods=st.integers(0, 300),
    quota=st.integers(1, 300),
    headroom=headrooms,
    sent=st.integers(0, 100),
    routers=st.integers(1, 6),
)
def test_no_router_sends_past_its_part_of_the_free_pods(
    pods: int, quota: int, headroom: int | str, sent: int, routers: int
) -> None:
    left = room(pods, quota, headroom, sent, routers)
    free = free_pods(pods, quota, headroom)
    assert left >= 0
    # after its room, the member counts full for this router (shared.rules.full_reason)...
    assert free_pods(pods, quota, headroom, routers * (sent + left)) <= 0
    # ...and not one launch earlier
    if left > 0:
        assert free_pods(pods, quota, headroom, routers * (sent + left - 1)) > 0
    # every router sending its room from the report on fills at most routers - 1 pods
    # past the free ones (each rounds its part up)
    from_report = room(pods, quota, headroom, 0, routers)
    assert routers * from_report <= max(0, free) + routers - 1
    if routers == 1:
        assert left == max(0, free - sent)


def test_two_routers_share_18_free_pods_nine_each() -> None:
    assert room(0, 20, "10%", 0, 2) == 9
    assert room(0, 20, "10%", 4, 2) == 5
    assert room(0, 20, "10%", 9, 2) == 0


def test_a_router_alone_has_every_free_pod_less_its_own_launches_as_room() -> None:
    assert room(0, 20, "10%", 3, 1) == 15  # 18 free, 3 launches sent
    assert room(10, 20, "10%", 0, 1) == 8


def test_the_view_weighs_a_member_by_its_free_share() -> None:
    config = make_config({"small": 10, "big": 10}, prime=None, pod_headroom="10%")
    records = {
        "small": make_obs("small", pods=0, quota=20),  # 18 free of 20: 18/20
        "big": make_obs("big", pods=125, quota=250),  # 100 free of 250: 8/20
    }
    view = evaluate(config, records, {}, None, NOW)
    assert {t.name: t.weight for t in view.targets} == {"small": 9.0, "big": 4.0}
    small = view.member("small")
    assert small is not None and small.capacity_share == 0.9


def test_a_member_without_a_quota_keeps_its_weight() -> None:
    config = make_config({"a": 10, "b": 30}, prime=None)
    records = {"a": make_obs("a", quota=None), "b": make_obs("b", pods=None)}
    view = evaluate(config, records, {}, None, NOW)
    assert {t.name: t.weight for t in view.targets} == {"a": 10, "b": 30}
    assert [m.capacity_share for m in view.members] == [None, None]


def test_launches_sent_since_the_report_count_against_the_free_pods() -> None:
    config = make_config({"small": 10, "big": 10}, prime=None, pod_headroom="10%")
    records = {"small": make_obs("small", pods=0, quota=20), "big": make_obs("big", quota=None)}
    four = evaluate(config, records, {}, None, NOW, SentLaunches({"small": 4}, routers=2))
    small = four.member("small")
    assert small is not None
    # 10 of 20 free: not full yet, weighed by its report (every router alike)
    assert (small.pending_launches, small.capacity_share, small.state) == (8, 0.9, "eligible")
    nine = evaluate(config, records, {}, None, NOW, SentLaunches({"small": 9}, routers=2))
    small = nine.member("small")
    assert small is not None and small.state == "full"
    assert small.reasons == ("full: 0 pods + 18 launches since + headroom 2 (10%) >= quota 20",)
    assert [t.name for t in nine.targets] == ["big"]


def test_a_fallback_set_keeps_configured_weights() -> None:
    config = make_config({"a": 10, "b": 30}, prime=None, fallback="all")
    records = {name: make_obs(name, status="unhealthy", pods=50) for name in ("a", "b")}
    view = evaluate(config, records, {}, None, NOW)
    assert view.fallback_active
    assert {t.name: t.weight for t in view.targets} == {"a": 10, "b": 30}
