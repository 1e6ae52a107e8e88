"""The words of a member's weight (shared/weights.py): made from the same numbers the status
document holds, so a page can never say one thing and the JSON another."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.bounded import LaunchWindow, RecentLaunches, bound, member_loads
from shared.capacity import SentLaunches
from shared.config import parse_config
from shared.evaluate import evaluate
from shared.records import CheckerHeartbeat, Drain, MemberObservation
from shared.weights import (
    capacity_json,
    number,
    slow_start_json,
    weight_reasons,
    weight_summary,
)
from tests.support.builders import NAMES, NOW, federations, make_config, observe_all
from tests.support.views import member_of, run


def test_the_summary_says_configured_then_effective_then_why() -> None:
    reasons = ["capacity: 8 of 20 pods free, x0.4", "slow start: step 4 of 10, x0.16"]
    assert weight_summary(50, 3.2, reasons) == (
        "50 -> 3.2 (capacity: 8 of 20 pods free, x0.4; slow start: step 4 of 10, x0.16)"
    )
    assert weight_summary(50.0, 50.0, []) == "50 -> 50"
    assert weight_summary(30, 0.0, ["excluded: full"]) == "30 -> 0 (excluded: full)"


@given(st.floats(0, 1e9, allow_nan=False))
def test_numbers_keep_two_decimals_and_drop_trailing_zeros(value: float) -> None:
    shown = number(value)
    assert float(shown) == float(f"{value:.2f}")
    assert not re.search(r"\.\d*0$|\.$", shown)


def test_the_load_bound_says_how_near_a_member_is_and_when_it_was_passed_over() -> None:
    config = make_config(load_balancer="bounded")  # alpha 50, beta 50, gamma 30
    view = run(config, observe_all(config, pods=0, quota=None))

    window = LaunchWindow(60.0)
    window.advance(NOW)
    for member, n in {"alpha": 11, "beta": 20, "gamma": 9}.items():
        for _ in range(n):
            window.add(member)
    loads = member_loads(view.targets, 1.25, window)
    recent = RecentLaunches(60.0, 40, loads, {"alpha": 12})
    assert bound(1.25 * 50 / 130, 40) == 20  # alpha's and beta's
    assert weight_reasons(view, member_of(view, "alpha"), recent) == [
        "load bound: 11 of 40 launches in the last 60s, bound 20; "
        "passed over for 12 launches since the router started"
    ]
    assert weight_reasons(view, member_of(view, "beta"), recent) == [
        "load bound: 20 of 40 launches in the last 60s, bound 20, "
        "reached: its repositories' launches go to their next member"
    ]
    assert weight_reasons(view, member_of(view, "beta")) == []  # without the router's launches


sent_launches = st.dictionaries(st.sampled_from(NAMES), st.integers(0, 30))
eligible_since = st.none() | st.sampled_from([0.0, NOW]) | st.floats(NOW - 400, NOW)


@settings(max_examples=200, deadline=None)
@given(
    fed=federations(),
    data=st.data(),
    slow_start=st.sampled_from([0.0, 300.0]) | st.floats(1, 600),
    sent=sent_launches,
    routers=st.integers(1, 4),
)
def test_the_words_are_the_numbers(
    fed: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]],
    data: st.DataObject,
    slow_start: float,
    sent: dict[str, int],
    routers: int,
) -> None:
    """An excluded member says so first; an eligible one names exactly the factors on its
    weight, with the factors its effective weight is the product of."""
    raw, observations, drains = fed
    observations = {
        name: replace(obs, eligible_since=data.draw(eligible_since))
        for name, obs in observations.items()
    }
    config = parse_config(raw | {"slow_start": slow_start}, "hypothesis")
    heartbeat = CheckerHeartbeat("c1", NOW)
    view = evaluate(config, observations, drains, heartbeat, NOW, SentLaunches(sent, routers))
    for m in view.members:
        reasons = weight_reasons(view, m)
        capacity = capacity_json(m, config.pod_headroom)
        ramp = slow_start_json(m, NOW, slow_start)
        said = [r.split(":")[0] for r in reasons]
        if not m.eligible:
            assert reasons[0] == f"excluded: {m.state}" and m.effective_weight == 0
            assert "capacity" not in said and "slow start" not in said
            continue
        assert ("capacity" in said) == (capacity is not None)
        assert ("slow start" in said) == (ramp is not None)
        share = 1.0 if capacity is None else capacity["share"]
        factor = 1.0 if ramp is None else ramp["factor"]
        assert m.effective_weight == m.weight * share * factor
        if capacity is not None:
            assert reasons[said.index("capacity")].endswith(f", x{number(capacity['share'])}")
            assert capacity["pending_launches"] == sent.get(m.name, 0) * routers
        if ramp is not None:
            assert f", x{number(ramp['factor'])}, " in reasons[said.index("slow start")]
            assert ramp["since"] <= NOW < ramp["until"] == ramp["since"] + slow_start
