"""``pod_headroom`` as a count of pods or as a share of the quota (``"10%"``), so that a
small member is not shut out by a headroom sized for a big one (issue 18)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.capacity import headroom_pods
from shared.config import ConfigError, check_config
from shared.evaluate import evaluate
from shared.rules import full_reason
from tests.support.builders import NOW, make_config, make_obs, url


@given(st.integers(0, 100), st.integers(1, 10_000))
def test_a_share_keeps_that_share_of_the_quota_rounded_up(percent: int, quota: int) -> None:
    pods = headroom_pods(f"{percent}%", quota)
    assert pods == math.ceil(percent * quota / 100)
    assert pods * 100 >= percent * quota and (pods - 1) * 100 < percent * quota


@given(st.integers(0, 1000), st.integers(1, 10_000))
def test_a_count_is_that_many_pods_whatever_the_quota(count: int, quota: int) -> None:
    assert headroom_pods(count, quota) == count


def test_decimal_shares_are_exact() -> None:
    assert headroom_pods("2.5%", 40) == 1  # exactly 1, not 1.0000000000000002 rounded up
    assert headroom_pods("12.5%", 9) == 2


def test_quota_20_at_10_percent_takes_launches_until_18_pods() -> None:
    config = make_config(pod_headroom="10%")
    for pods, full in ((17, False), (18, True), (19, True)):
        obs = {n: make_obs(n, pods=pods, quota=20) for n in config.members}
        view = evaluate(config, obs, {}, None, NOW)
        assert (view.member("beta").state == "full") is full, pods  # type: ignore[union-attr]
    reason = full_reason(make_obs("beta", pods=18, quota=20), "10%")
    assert reason == "full: 18 pods + headroom 2 (10%) >= quota 20"


def test_a_fixed_headroom_shuts_a_small_member_out_where_a_share_does_not() -> None:
    small = make_obs("gamma", pods=2, quota=10)
    assert full_reason(small, 10) is not None
    assert full_reason(small, "10%") is None


@pytest.mark.parametrize("fmt", ["native", "legacy"])
def test_both_formats_take_a_share(fmt: str) -> None:
    section = "members" if fmt == "native" else "hosts"
    doc = {section: {"a": {"url": url("a"), "weight": 1}}, "pod_headroom": "10%"}
    assert check_config(doc, "f.json").config.pod_headroom == "10%"


@pytest.mark.parametrize("bad", ["110%", "10 %", "%", "ten%", "-5%", "10", -1, 1.5, True])
def test_anything_else_is_refused_naming_the_key(bad: object) -> None:
    doc = {"members": {"a": {"url": url("a"), "weight": 1}}, "pod_headroom": bad}
    with pytest.raises(ConfigError, match=r"f.yaml: key 'pod_headroom"):
        check_config(doc, "f.yaml")
