"""Flap damping end to end: a member that flaps every check does not flap in the view."""

from __future__ import annotations

import time
from pathlib import Path

from fedredirect.simulator import MemberSimState
from tests.support.members import running_members
from tests.support.procs import status, wait_for
from tests.support.stack import running_stack

PERIOD = 0.2


def test_a_member_flapping_every_check_keeps_its_state(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    alpha = MemberSimState("alpha")
    beta = MemberSimState("beta", flap=True)
    check = {
        "period": PERIOD,
        "timeout": 0.5,
        "jitter": 0.0,
        "rise": 2,
        "fall": 2,
        "failed_period": 5,
    }
    with (
        running_members(alpha, beta) as (a, b),
        running_stack((a, b), redis_url, key_prefix, tmp_path, eligible=0, check=check) as stack,
    ):
        r, log = stack.router, stack.checker_log
        wait_for(lambda: b.hits["/health"] >= 2, what="beta checked")
        first = status(r)["members"]["beta"]["state"]
        assert first == "eligible"
        started = b.hits["/health"]
        seen = set()
        deadline = time.monotonic() + 30
        while b.hits["/health"] < started + 20 and time.monotonic() < deadline:
            seen.add(status(r)["members"]["beta"]["state"])
            time.sleep(0.05)
        flaps = b.hits["/health"] - started
        assert flaps >= 20, flaps
        assert seen == {"eligible"}, seen  # 20 alternating answers, no state change

        b.state.flap = False
        b.state.hub_ok = False  # a real failure: two bad answers in a row flip it
        wait_for(
            lambda: status(r)["members"]["beta"]["state"] == "unhealthy",
            what="a sustained failure is noticed",
        )
    transitions = [line for line in log.read_text().splitlines() if "member beta:" in line]
    print(f"beta answered {flaps} flapping checks; state changes logged: {transitions}")
    assert len(transitions) == 2  # None -> eligible at start, then eligible -> unhealthy


def test_a_flapping_prime_version_does_not_flap_the_reference(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    alpha = MemberSimState("alpha", flap_versions="2.0.0")
    check = {"period": PERIOD, "timeout": 0.5, "jitter": 0.0}
    dwell = {"min_dwell": 1.0}
    with (
        running_members(alpha, MemberSimState("beta")) as (a, b),
        running_stack(
            (a, b), redis_url, key_prefix, tmp_path, eligible=0, check=check, versions=dwell
        ) as stack,
    ):
        r = stack.router
        wait_for(lambda: a.hits["/versions"] >= 3, what="prime versions observed")
        start = a.hits["/versions"]
        references = set()
        while a.hits["/versions"] < start + 15:
            references.add(status(r)["reference"]["versions"]["binderhub"])
            time.sleep(0.05)
        assert len(references) == 1, references  # flapping never reached the reference
        a.state.flap_versions = None
        a.state.binderhub_version = "3.0.0"  # a real, stable change does, after the dwell
        wait_for(
            lambda: status(r)["reference"]["versions"]["binderhub"] == "3.0.0",
            what="stable new version becomes the reference",
        )
