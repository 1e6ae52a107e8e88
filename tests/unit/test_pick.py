"""Picking with the defaults: /why (explain) must describe the pick the router makes."""

from __future__ import annotations

import pytest

from shared.explain import explain
from tests.support.builders import make_config, observe_all
from tests.support.views import run


@pytest.mark.parametrize("balancer", ["rendezvous", "random", "bounded"])
def test_why_describes_the_pick_made_with_the_default_draw(balancer: str) -> None:
    config = make_config(load_balancer=balancer)  # alpha 50, beta 50, gamma 30
    view = run(config, observe_all(config))
    for i in range(20):
        path = f"/build/gh/org/repo{i}/HEAD"
        decision = view.pick(path)
        assert explain(view, path)["pick"] == {
            "member": decision.member,
            "url": decision.url,
            "reason": decision.reason,
        }
    if balancer == "random":
        assert view.pick("/x").member == "alpha"  # the draw defaults to 0: the first target
