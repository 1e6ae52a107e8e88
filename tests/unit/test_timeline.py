"""The pictures' pure builder: segments tile the window, the state at its start is the last
change before it, a lead-in says since when history exists, and launch shares are
differences of each router's cumulative counts."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from shared.timeline import (
    NO_HISTORY,
    Segment,
    clock,
    launch_shares,
    member_changes,
    segments,
    timeline,
)
from tests.support.events import gate_suspended, reference_changed, state_changed

STATES = ("eligible", "full", "failing", "unreachable", "drained")
times = st.floats(0, 1000, allow_nan=False, allow_infinity=False)
changes = st.lists(st.tuples(times, st.sampled_from(STATES), st.sampled_from(("a", "b"))))


@given(changes, times, st.floats(1, 1000), st.none() | times)
def test_segments_tile_the_window_in_time_order(
    changed: list[tuple[float, str, str]], start: float, length: float, known: float | None
) -> None:
    end = start + length
    tiles = segments(changed, start, end, known)
    assert tiles[0].start == start and tiles[-1].end == end
    for before, after in itertools.pairwise(tiles):
        assert before.end == after.start  # no gap, no overlap
        assert (before.state, before.reason) != (after.state, after.reason)  # merged
    assert all(t.start < t.end for t in tiles)


@given(changes, times, st.floats(1, 1000))
def test_each_segment_has_the_state_of_the_last_change_before_it(
    changed: list[tuple[float, str, str]], start: float, length: float
) -> None:
    end = start + length
    ordered = sorted(changed, key=lambda c: c[0])
    for tile in segments(changed, start, end):
        before = [c for c in ordered if c[0] <= tile.start]
        if before:
            assert (tile.state, tile.reason) == before[-1][1:]
        else:
            assert tile.state == NO_HISTORY


def test_the_state_at_the_window_start_is_the_last_change_before_it() -> None:
    changed = [(10, "eligible", "ok"), (50, "full", "full: 100 pods"), (150, "eligible", "ok")]
    assert segments(changed, 100, 200) == [
        Segment(100, 150, "full", "full: 100 pods"),
        Segment(150, 200, "eligible", "ok"),
    ]


def test_history_that_starts_late_has_a_lead_in_saying_since_when() -> None:
    tiles = segments([(160, "eligible", "ok")], 100, 200, known_since=130)
    assert tiles == [
        Segment(100, 160, NO_HISTORY, f"no history before {clock(160)}"),
        Segment(160, 200, "eligible", "ok"),
    ]
    empty = segments([], 100, 200, known_since=130)
    assert empty == [Segment(100, 200, NO_HISTORY, f"no history before {clock(130)}")]


def test_a_launch_share_is_the_difference_between_a_routers_events() -> None:
    def launches(router: str, at: float, started: float, **counts: int) -> dict[str, object]:
        return {
            "event": "launches",
            "router": router,
            "at": at,
            "started_at": started,
            "counts": counts,
        }

    events = [
        launches("r1", 90, 0, a=5, b=5),  # before the window: the baseline
        launches("r1", 120, 0, a=9, b=6),
        launches("r1", 180, 0, a=10, b=16),
        launches("r2", 150, 130, a=3),  # started within the window: all of it counts
        launches("r3", 150, 50, a=7),  # started before, baseline unknown: nothing counts
    ]
    assert launch_shares(events, 100, 200) == {
        "r1": {"a": 5, "b": 11},
        "r2": {"a": 3},
        "r3": {"a": 0},
    }


def test_the_timeline_document_has_every_strip() -> None:
    events = [
        state_changed("a", 1000.0, None, "eligible"),
        state_changed("a", 3000.0, "eligible", "full", "full: 9 + 1 >= 10"),
        {"event": "drain", "member": "a", "at": 3500.0, "reason": "upgrade"},
        reference_changed(1000.0, None, {"binderhub": "1"}, "prime a"),
        gate_suspended(3600.0, "would exclude all"),
    ]
    doc = timeline(events, 1000.0, ["a"], "1h", 1000.0 + 3600)
    assert doc["start"] == 1000.0 and doc["end"] == 4600.0
    assert [(s["state"], s["start"]) for s in doc["members"]["a"]["segments"]] == [
        ("eligible", 1000.0),
        ("full", 3000.0),
    ]
    assert doc["members"]["a"]["segments"][1]["reason"] == "full: 9 + 1 >= 10"
    assert doc["members"]["a"]["drains"] == [{"at": 3500.0, "event": "drain", "reason": "upgrade"}]
    assert [s["state"] for s in doc["reference"]] == ["fresh"]
    assert "binderhub=1 from prime a" in doc["reference"][0]["reason"]
    assert [(s["state"], s["start"]) for s in doc["gate"]] == [
        ("gating", 1000.0),
        ("suspended", 3600.0),
    ]
    assert member_changes(events, "b") == []
