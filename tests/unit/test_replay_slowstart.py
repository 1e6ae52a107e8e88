"""Replay knows slow start (issue 18): the records in history carry the start the checker
stamped (``eligible_since``), so the replayed column ramps a recovered member as the routers
did, and replaying under ``slow_start: 0`` shows the day without the ramp."""

from __future__ import annotations

from typing import Any

from shared import replay
from shared.slowstart import FLOOR, ramp_factor
from tests.support.replay import config, history

DOWN, BACK = 300.0, 600.0  # b is unhealthy in between; the default slow_start is 300 s


def recovery(end: float = 1500) -> list[dict[str, Any]]:
    """a and b observed every minute; b unhealthy from DOWN to BACK, its records stamped as
    the checker stamps them: no start while excluded, BACK from then on."""
    events = history(end, b=lambda t: {"status": "unhealthy"} if DOWN <= t < BACK else {})
    for event in events:
        if event["event"] == "observation" and event["member"] == "b":
            at = event["at"]
            event["record"]["eligible_since"] = 0.0 if at < DOWN else None if at < BACK else BACK
    return events


def share_of_b(report: dict[str, Any], minute: int) -> float:
    row = report["replayed"]["launches"]["buckets"][minute]
    return float(row["counts"].get("b", 0) / row["total"])


def test_the_replayed_column_ramps_a_recovered_member() -> None:
    timeline = replay.replayed_timeline(recovery(), config())
    weights = {
        frame.at: {t.name: t.weight for t in frame.view.targets}
        for frame in timeline.frames
        if frame.at >= BACK
    }
    a = weights[BACK]["a"]  # 90 of its 100 pods free: 0.9 of its weight, never ramping
    assert weights[BACK]["b"] == a * FLOOR
    # a step a minute, as replay evaluates: 2, 4, 6, 8 of 10, then done
    assert [weights[BACK + 60 * k]["b"] for k in range(1, 6)] == [
        a * ramp_factor(2 * k) for k in range(1, 6)
    ]


def test_its_launches_follow_the_ramp() -> None:
    """The synthetic launches of the first minute back go to b as its floor weighs beside
    a (0.1 / 1.1 of them), half once slow_start is over; replayed without slow start, half
    at once."""
    events = recovery()
    ramped = replay.replay(events, config(), per_minute=600, bucket=60)
    minute_back, ramp_over = int(BACK // 60), int((BACK + 300) // 60)
    assert abs(share_of_b(ramped, 0) - 0.5) <= 0.05  # eligible long ago: no ramp
    assert abs(share_of_b(ramped, minute_back) - FLOOR / (1 + FLOOR)) <= 0.03
    assert abs(share_of_b(ramped, ramp_over) - 0.5) <= 0.05
    at_once = replay.replay(events, config(slow_start=0), per_minute=600, bucket=60)
    assert abs(share_of_b(at_once, minute_back) - 0.5) <= 0.05
