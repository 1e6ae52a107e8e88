"""A member whose /health hangs is never eligible again until it answers well ``rise`` times
(issue 16, point 4): with period 2 s and timeout 5 s, a hung check outlasts two periods, and
the member used to go stale, then eligible for a round on its first bad answer, then
unreachable.

The hanging /health is a second simulated member's (the member's ``health`` URL points at
it), so /versions keeps answering as on a member whose hub alone is stuck.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from fedredirect.simulator import MemberSimState
from shared.config import load_config
from tests.support.members import running_members
from tests.support.procs import checker, router, run_cli, status, wait_for

PERIOD, TIMEOUT, RISE = 2.0, 5.0, 2


def test_a_member_whose_health_hangs_stays_out_until_it_answers_well_again(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    states = MemberSimState("alpha"), MemberSimState("beta"), MemberSimState("beta-health")
    with running_members(*states) as (alpha, beta, beta_health):
        config = tmp_path / "federation.yaml"
        doc = {
            "check": {
                "period": PERIOD,
                "timeout": TIMEOUT,
                "rise": RISE,
                "fall": 2,
                "failed_period": 2,  # a failing member's next /health comes soon
            },
            "members": {
                "alpha": {"url": alpha.url, "weight": 10, "prime": True},
                "beta": {"url": beta.url, "weight": 10, "health": beta_health.url + "/health"},
            },
        }
        config.write_text(yaml.safe_dump(doc))
        assert load_config(config).stale_after == 7.2  # derived: 3 periods are only 6 s
        with (
            checker(config, redis_url, key_prefix, tmp_path / "checker.log"),
            router(redis_url, key_prefix, tmp_path / "router.log") as r,
        ):
            wait_for(lambda: status(r)["members"]["beta"]["state"] == "eligible", 20, "beta up")

            def watch(
                until: float, done: Callable[[dict[str, Any]], bool] | None = None
            ) -> list[tuple[float, str, int]]:
                """(seconds since the hang, beta's state, /health requests) until ``until``
                (monotonic) or until ``done`` says so."""
                seen = []
                while time.monotonic() < until:
                    member = status(r)["members"]["beta"]
                    seen.append((time.monotonic() - hung_at, member["state"], hits()))
                    if done is not None and done(member):
                        break
                    time.sleep(0.05)
                return seen

            def hits() -> int:
                return beta_health.hits["/health"]

            # Hang right after a check: the next one hangs from its start, so the record
            # goes unrefreshed for a whole period and a timeout, the longest it can.
            answered = hits()
            wait_for(lambda: hits() > answered, 10, "a check of beta's /health")
            beta_health.state.fault = "hang"
            hung_at = time.monotonic()
            hang = watch(hung_at + 40, lambda m: m["state"] == "unreachable")
            assert hang[-1][1] == "unreachable", hang[-5:]
            reasons = status(r)["members"]["beta"]["reasons"]
            assert any(f"no complete answer within {TIMEOUT:g}s" in x for x in reasons), reasons
            hang += watch(time.monotonic() + 3 * TIMEOUT)  # three more hung checks

            recovered_at = time.monotonic()
            beta_health.state.fault = None
            hits_before = hits()
            recovery = watch(recovered_at + 40, lambda m: m["state"] == "eligible")
            assert recovery[-1][1] == "eligible", recovery[-5:]

    left = next(i for i, (_, state, _) in enumerate(hang) if state != "eligible")
    after = [state for _, state, _ in hang[left:]] + [state for _, state, _ in recovery[:-1]]
    changes = [
        (round(t, 1), s) for i, (t, s, _) in enumerate(hang) if i == 0 or hang[i - 1][1] != s
    ]
    print(f"beta after /health hung: {changes}; stale seen: {'stale' in after}")
    assert "eligible" not in after, changes
    # back only on rise good answers: requests that came once /health answered again
    assert recovery[-1][2] - hits_before >= RISE, recovery[-5:]


def test_check_config_refuses_a_record_max_age_shorter_than_a_hung_check(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    doc = {
        "check": {"period": PERIOD, "timeout": TIMEOUT},
        "record_max_age": 6,
        "members": {"a": {"url": "https://a.example.org", "weight": 1}},
    }
    path.write_text(yaml.safe_dump(doc))
    result = run_cli("check-config", str(path))
    assert result.returncode == 2, result
    assert f"{path}: key 'record_max_age': 6s is shorter" in result.stderr
    assert "set at least 7.2 or leave it out" in result.stderr
    assert result.stdout == ""
