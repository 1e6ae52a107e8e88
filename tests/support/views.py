"""Evaluate what tests/support/builders.py builds, at ``NOW``, and read the view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.config import FederationConfig, parse_config
from shared.evaluate import MemberView, View, evaluate
from shared.records import Drain, MemberObservation
from tests.support.builders import NOW


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
