"""Operator tools against a running stack: /why, `fedredirect why`, drain and undrain."""

from __future__ import annotations

import json
import subprocess
import time

import httpx

from tests.support.procs import launch, run_cli, status, wait_for
from tests.support.stack import Stack


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, *stack.store_args)


def test_why_explains_the_pick_the_router_makes(stack: Stack) -> None:
    r1 = stack.router
    path = "/build/gh/org/explained/HEAD"
    doc = httpx.get(f"{r1}/why", params={"path": path}).json()
    location = httpx.get(f"{r1}{path}", follow_redirects=False).headers["location"]
    assert location == doc["pick"]["url"] + path
    assert doc["cache_key"] == "/build/gh/org/explained"
    assert doc["pick"]["reason"] == "balancer"
    ins = [c for c in doc["candidates"] if c["in"]]
    assert len(ins) == 3
    assert ins[0]["member"] == doc["pick"]["member"]  # the highest score wins
    assert ins[0]["score"] >= max(c["score"] for c in ins)
    printed = cli(stack, "why", path)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout)["pick"] == doc["pick"]


def test_drain_is_reflected_by_every_router_within_a_second(stack: Stack) -> None:
    routers = stack.routers
    path = "/build/gh/org/drained/HEAD"
    victim = httpx.get(f"{routers[0]}/why", params={"path": path}).json()["pick"]["member"]
    started = time.monotonic()
    done = cli(stack, "drain", victim, "--reason", "maintenance window")
    assert done.returncode == 0, done.stderr
    try:
        for r in routers:
            wait_for(
                lambda r=r: status(r)["members"][victim]["state"] == "drained",
                1.0,
                f"{r} applies the drain",
            )
        elapsed = time.monotonic() - started
        print(f"drain reflected by both routers after {elapsed:.3f}s")
        for r in routers:
            member = status(r)["members"][victim]
            assert member["reasons"] == ["drained by an operator: maintenance window"]
            with httpx.Client() as client:
                moved = launch(client, r, path).headers["location"]
            assert not moved.startswith(member["url"] + "/")
        why = httpx.get(f"{routers[0]}/why", params={"path": path}).json()
        out = next(c for c in why["candidates"] if c["member"] == victim)
        assert out["in"] is False and "maintenance window" in out["why"]
    finally:
        undone = cli(stack, "undrain", victim)
        assert undone.returncode == 0, undone.stderr
    for r in routers:
        wait_for(
            lambda r=r: status(r)["members"][victim]["state"] == "eligible",
            1.0,
            f"{r} applies the undrain",
        )


def test_drain_of_an_unknown_member_is_refused(stack: Stack) -> None:
    done = cli(stack, "drain", "nosuchmember")
    assert done.returncode == 2
    assert "unknown member 'nosuchmember'" in done.stderr and "alpha" in done.stderr
