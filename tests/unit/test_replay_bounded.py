"""Replay under ``load_balancer: bounded``: the synthetic launches picked as one router
would pick them (the core's pure functions, one window of the stream), how closely each
repository kept its member and the peak load against a member's weighted share, beside
the recorded balancer's."""

from __future__ import annotations

import functools
import math

import pytest

from fedredirect.replay_command import read_alert_durations
from fedredirect.replay_text import render
from shared import replay as replays
from shared.balance import Target
from shared.bounded import LaunchWindow, bounded_pick
from shared.replay import replayed_timeline
from shared.replay_summary import (
    Launch,
    affinity,
    launch_stream,
    launches,
    peak_load_ratio,
    weighted_shares,
)
from tests.support.replay import config, history

replay = functools.partial(replays.replay, alert_for=read_alert_durations())
BOUNDED = {"load_balancer": "bounded", "bounded_load": {"factor": 1.25, "window": 60}}


def test_bounded_launches_are_the_cores_picks_against_the_streams_window() -> None:
    chosen = config(**BOUNDED)
    timeline = replayed_timeline(history(end=900), chosen)
    stream = launch_stream(timeline, per_minute=60, repositories=7)
    window = LaunchWindow(60.0)
    for launch in stream:
        view = timeline.frame_at(launch.at).view
        window.advance(launch.at)
        expected = bounded_pick(f"/build/gh/replay/repo-{launch.repo}", view.targets, 1.25, window)
        assert expected is not None and launch.member == expected.name
        window.add(expected.name)
        assert launch.shares == {"a": 0.5, "b": 0.5}
    assert launches(timeline, 60, 7) == [(x.at, x.member) for x in stream]


def test_one_repository_is_spread_under_bounded_and_kept_under_rendezvous() -> None:
    """Every launch of one repository: rendezvous sends all to one member, twice its share;
    bounded gives its member its bound (1.25 x its half) and the other member the rest."""
    for settings, kept, peak in (({}, 1.0, 2.0), (BOUNDED, 0.625, 1.25)):
        timeline = replayed_timeline(history(end=1800), config(**settings))
        stream = launch_stream(timeline, per_minute=60, repositories=1)
        assert affinity((x.repo, x.member) for x in stream) == pytest.approx(kept, abs=0.01)
        found = peak_load_ratio([(x.at, x.member, x.shares) for x in stream], 60.0)
        assert found is not None and found[0] == pytest.approx(peak, abs=0.03)


def test_the_report_names_each_columns_balancer_and_prints_the_balancing_lines() -> None:
    report = replay(history(end=1800), config(**BOUNDED))
    assert report["config"]["load_balancer"] == "bounded"
    assert report["config"]["bounded_load"] == {"factor": 1.25, "window": 60.0}
    assert report["recorded_config"]["load_balancer"] == "rendezvous"
    assert report["recorded_config"]["bounded_load"] is None
    launched = report["replayed"]["launches"]
    assert launched["peak_load_window_seconds"] == 60.0
    assert launched["peak_load_ratio"] <= 1.25 + 0.1 and launched["affinity"] <= 1.0
    text = render(report)
    assert "balancer bounded (factor 1.25, window 60s)" in text
    assert "balancer rendezvous)" in text
    assert "repository on its usual member" in text
    assert "peak load / weighted share (60s)" in text
    # nothing of it when both columns balance by rendezvous, the default
    plain = render(replay(history(end=1800)))
    assert "balancer" not in plain and "usual member" not in plain


def test_affinity_weighs_each_repository_by_its_launches() -> None:
    assert affinity([]) is None
    assert affinity([("r", None)]) is None
    picks = [("r", "a"), ("r", "a"), ("r", "b"), ("s", "b"), ("t", None)]
    assert affinity(picks) == 3 / 4


def test_peak_load_ratio_counts_only_windows_within_one_set_of_targets() -> None:
    half = {"a": 0.5, "b": 0.5}
    only_a = {"a": 1.0}
    # a steady 2:1 split for 10 s: a has 2 of every 3 launches, 4/3 of its share
    steady = [(t / 3, "a" if t % 3 else "b", half) for t in range(30)]
    peak = peak_load_ratio(steady, 3.0)
    assert peak is not None and peak[1] == "a"
    assert math.isclose(peak[0], 4 / 3, rel_tol=0.15)
    # shorter than a window: no window to judge
    assert peak_load_ratio(steady[:5], 3.0) is None
    assert peak_load_ratio([], 3.0) is None
    # the targets change: the first window after the change is judged from the change on
    changed = [(t / 3, "a", only_a) for t in range(12)] + [
        (4 + t / 3, "b", half) for t in range(12)
    ]
    peak = peak_load_ratio(changed, 2.0)
    assert peak is not None and peak == (2.0, "b")
    # a launch to a member that is no target (share 0) is an infinite load
    stray = [(t / 3, "c", half) for t in range(12)]
    assert peak_load_ratio(stray, 2.0) == (math.inf, "c")


def test_weighted_shares_leave_out_weight_zero() -> None:
    shares = weighted_shares([Target("a", "u", 3), Target("b", "u", 1), Target("z", "u", 0)])
    assert shares == {"a": 0.75, "b": 0.25}


def test_launch_is_a_named_record() -> None:
    launch = Launch(1.0, 2, "a", {"a": 1.0})
    assert (launch.at, launch.repo, launch.member, launch.shares) == (1.0, 2, "a", {"a": 1.0})
