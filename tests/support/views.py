"""Evaluate what tests/support/builders.py builds, at ``NOW``, and read the view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from shared.capacity import SentLaunches
from shared.config import FederationConfig, parse_config
from shared.evaluate import MemberView, View, evaluate
from shared.records import CheckerHeartbeat, Drain, MemberObservation
from tests.support.builders import NAMES, NOW, federations


def run(
    config: FederationConfig,
    observations: Mapping[str, MemberObservation],
    drains: Mapping[str, Drain] | None = None,
    now: float = NOW,
) -> View:
    return evaluate(config, observations, drains or {}, None, now)


def evaluate_raw(
    fed: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]],
) -> View:
    raw, observations, drains = fed
    return run(parse_config(raw, "hypothesis"), observations, drains)


def member_of(view: View, name: str) -> MemberView:
    found = view.member(name)
    assert found is not None, name
    return found


def states(view: View) -> dict[str, str]:
    return {m.name: m.state for m in view.members}


@st.composite
def views_with_weights(draw: st.DrawFn) -> tuple[View, SentLaunches]:
    """A random federation (builders.federations) evaluated at ``NOW`` as a router would:
    with a drawn ``slow_start``, each record eligible since a drawn time, and launches
    sent since each member's report by some routers (returned with the view)."""
    raw, observations, drains = draw(federations())
    since = st.none() | st.sampled_from([0.0, NOW, NOW - 299.0]) | st.floats(NOW - 400, NOW)
    observations = {
        name: replace(obs, eligible_since=draw(since)) for name, obs in observations.items()
    }
    slow_start = draw(st.sampled_from([0.0, 300.0]) | st.floats(1, 600))
    config = parse_config(raw | {"slow_start": slow_start}, "hypothesis")
    counts = draw(st.dictionaries(st.sampled_from(NAMES), st.integers(0, 30)))
    sent = SentLaunches(counts, draw(st.integers(1, 4)))
    heartbeat = CheckerHeartbeat("c1", NOW)
    return evaluate(config, observations, drains, heartbeat, NOW, sent), sent
