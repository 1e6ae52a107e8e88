"""Slow start end to end (issue 18): a checker and a router as an operator runs them; a
member that recovers ramps on the router's /status.json from a tenth of its weight to all of
it, step by step, from the instant the checker published."""

from __future__ import annotations

import httpx

from shared.slowstart import STEPS, ramp_factor
from tests.support.procs import status, wait_for
from tests.support.stack import StartStack

SLOW_START = 20.0
PERIOD = 1.0
WEIGHTS = {"alpha": 10.0, "beta": 30.0}


def beta(router: str) -> dict[str, object]:
    member: dict[str, object] = status(router)["members"]["beta"]
    return member


def test_a_recovered_member_ramps_to_its_full_weight_within_slow_start(
    start_stack: StartStack,
) -> None:
    check = {"period": PERIOD, "timeout": 1.0, "jitter": 0.0, "failed_period": PERIOD}
    with (
        start_stack(
            WEIGHTS,
            check=check | {"rise": 1, "fall": 1},
            slow_start=SLOW_START,
        ) as stack,
    ):
        sim = f"{stack.members['beta'].url}/_sim"
        httpx.post(sim, json={"healthy": False}).raise_for_status()
        wait_for(lambda: beta(stack.router)["state"] == "unhealthy", 10, "beta excluded")
        httpx.post(sim, json={"healthy": True}).raise_for_status()
        back = wait_for(
            lambda: (b := beta(stack.router))["state"] == "eligible" and b, 10, "beta back"
        )
        capacity = back["capacity"]
        assert isinstance(capacity, dict)
        full = WEIGHTS["beta"] * capacity["share"]
        steps = {full * ramp_factor(step): step for step in range(STEPS + 1)}

        weights = [back["effective_weight"]]

        def at_full_weight() -> bool:
            weights.append(beta(stack.router)["effective_weight"])
            return weights[-1] == full

        # Its last step is due slow_start after the checker's publish, which the router
        # judges at the next heartbeat: within a period (and a second of a loaded machine).
        wait_for(at_full_weight, SLOW_START + PERIOD + 1.0, "beta at its full weight")
        ramp = [w for i, w in enumerate(weights) if i == 0 or w != weights[i - 1]]
        assert ramp[0] == full * ramp_factor(0) and ramp[-1] == full
        assert ramp == sorted(ramp) and all(w in steps for w in ramp), ramp
        assert len(ramp) >= STEPS // 2, ramp  # step by step, not all at once
