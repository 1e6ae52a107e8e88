"""History on a real stack: the checker records transitions and observations, routers
serve /history.json, `fedredirect history` prints and exports it, drains are in it, and
losing the stream loses history only."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from fedredirect.simulator import MemberSimState
from router.history import launches_event, record_launches
from shared.store import Store, connect
from tests.support.members import running_members
from tests.support.procs import checker, run_cli, wait_for, write_config
from tests.support.stack import Stack


def history(router: str, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{router}/history.json", params=params, timeout=5)
    response.raise_for_status()
    doc: dict[str, Any] = response.json()
    return doc


def state_events(doc: dict[str, Any], member: str) -> list[tuple[str | None, str]]:
    return [
        (e["old"], e["new"])
        for e in doc["events"]
        if e["event"] == "member_state_changed" and e["member"] == member
    ]


def cli(stack: Stack, *args: str) -> Any:
    return run_cli(*args, *stack.store_args)


def test_transitions_are_recorded_and_served(stack: Stack) -> None:
    router = stack.router
    first = history(router, since="1h")
    assert first["available_since"] is not None
    assert {("alpha", None, "eligible"), ("beta", None, "eligible")} <= {
        (e["member"], e["old"], e["new"])
        for e in first["events"]
        if e["event"] == "member_state_changed"
    }
    assert any(e["event"] == "reference_changed" for e in first["events"])
    observed = [e for e in first["events"] if e["event"] == "observation"]
    assert {e["member"] for e in observed} == {"alpha", "beta", "gamma"}
    assert observed[0]["record"]["health"]["status"] == "ok"

    beta = stack.members["beta"]
    beta.state.total_pods = 100  # full
    try:
        wait_for(
            lambda: ("eligible", "full") in state_events(history(router, member="beta"), "beta"),
            what="beta's eligible -> full in history",
        )
    finally:
        beta.state.total_pods = 10
    wait_for(
        lambda: ("full", "eligible") in state_events(history(router, member="beta"), "beta"),
        what="beta back to eligible in history",
    )
    only_beta = history(stack.routers[1], since="1h", member="beta")
    assert {e.get("member", "beta") for e in only_beta["events"]} == {"beta"}


def test_the_command_line_prints_and_exports_it(stack: Stack, tmp_path: Path) -> None:
    text = cli(stack, "history", "--since", "1h", "--member", "beta")
    assert text.returncode == 0, text.stderr
    assert "member beta: None -> eligible (all checks pass)" in text.stdout
    as_json = cli(stack, "history", "--since", "1h", "--json")
    doc = json.loads(as_json.stdout)
    assert doc["available_since"] is not None and doc["events"]
    export = tmp_path / "history.jsonl"
    exported = cli(stack, "history", "--since", "1h", "--export", str(export))
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert lines[: len(doc["events"])] == doc["events"]
    recent = tmp_path / "recent.jsonl"
    assert cli(stack, "history", "--since", "1s", "--export", str(recent)).returncode == 0
    context = [json.loads(line) for line in recent.read_text().splitlines()]
    assert context[0]["event"] == "config"  # so a replay of it needs no --config
    assert {e["member"] for e in context if e["event"] == "observation"} == {
        "alpha",
        "beta",
        "gamma",
    }
    bad = cli(stack, "history", "--since", "yesterday")
    assert bad.returncode == 2 and "neither a duration" in bad.stderr


def test_drains_are_in_history(stack: Stack) -> None:
    drained = cli(stack, "drain", "gamma", "--reason", "k8s upgrade")
    assert drained.returncode == 0, drained.stderr
    cli(stack, "undrain", "gamma")
    doc = history(stack.router, member="gamma")
    kinds = [
        (e["event"], e.get("reason")) for e in doc["events"] if e["event"] in ("drain", "undrain")
    ]
    assert kinds[-2:] == [("drain", "k8s upgrade"), ("undrain", None)]
    wait_for(
        lambda: ("eligible", "drained") in state_events(history(stack.router), "gamma"),
        what="the checker's own record of the drain",
    )


def test_losing_the_stream_loses_history_only(stack: Stack) -> None:
    router = stack.router
    before = history(router, since="1h")["available_since"]
    client = redis.Redis.from_url(stack.redis_url)
    try:
        client.delete(f"{stack.prefix}:history")
    finally:
        client.close()
    launch = httpx.get(f"{router}/build/gh/org/repo/HEAD", follow_redirects=False)
    assert launch.status_code == 307
    stack.members["beta"].state.total_pods = 100  # the next transition starts it anew
    doc = wait_for(
        lambda: ("eligible", "full") in state_events(d := history(router, since="1h"), "beta") and d
    )
    assert doc["available_since"] > before


def test_a_since_that_means_nothing_is_refused(stack: Stack) -> None:
    response = httpx.get(f"{stack.router}/history.json", params={"since": "soon"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "since"]


def test_routers_keep_their_launch_counts(redis_url: str, key_prefix: str) -> None:
    counts: Counter[tuple[str, str]] = Counter({("alpha", "balancer"): 3, ("alpha", "cookie"): 2})

    async def run() -> list[dict[str, Any]]:
        store = Store(connect(redis_url), key_prefix)
        task = asyncio.create_task(record_launches(store, lambda: counts, lambda: 1000, every=0.05))
        try:
            for _ in range(200):
                _, events = await store.read_history()
                if len(events) >= 2:
                    return events
                counts[("beta", "balancer")] += 1
                await asyncio.sleep(0.02)
            raise AssertionError("no launch counts recorded")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.client.aclose()

    events = asyncio.run(run())
    assert events[0]["event"] == "launches" and events[0]["counts"]["alpha"] == 5
    assert events[1]["counts"]["beta"] >= events[0]["counts"].get("beta", 0)
    assert launches_event("r", 1.0, Counter(), 2.0)["counts"] == {}


@pytest.fixture(autouse=True)
def _back_to_normal(stack: Stack) -> Any:
    yield
    for member in stack.members.values():
        member.state.total_pods = 10


def test_an_outage_is_in_history_once_a_checker_writes_again(
    redis_url: str, tmp_path: Path
) -> None:
    """While no checker writes, nobody can record that the routers apply the outage policy;
    the next writer records when it began (the last heartbeat + max_staleness) and ended."""
    prefix = "e2e-history-outage"
    with running_members(MemberSimState("alpha")) as (alpha,):
        config = write_config(tmp_path / "federation.yaml", {"alpha": (alpha, 1.0, True)})
        store_client = redis.Redis.from_url(redis_url)

        def last_heartbeat() -> float | None:
            raw = store_client.get(f"{prefix}:heartbeat")
            return float(json.loads(raw)["at"]) if raw else None

        try:
            with checker(config, redis_url, prefix, tmp_path / "checker1.log"):
                wait_for(last_heartbeat, what="the first checker's heartbeat")
            stopped = wait_for(last_heartbeat)
            # max_staleness is 3 x period 0.3 s: wait until the routers would apply it.
            wait_for(lambda: time.time() > stopped + 2, what="the heartbeat to go stale")
            with checker(config, redis_url, prefix, tmp_path / "checker2.log"):
                text = wait_for(
                    lambda: "outage over" in (out := run_cli_history(redis_url, prefix)) and out,
                    what="the outage in history",
                )
        finally:
            store_client.close()
    assert "outage: no checker heartbeat for " in text
    assert "(max 1s): the routers applied outage policy 'keep'" in text
    doc = json.loads(run_cli_history(redis_url, prefix, "--json"))
    began, ended = (e for e in doc["events"] if e["event"] == "outage_active")
    assert (began["new"], ended["new"]) == (True, False)
    assert began["at"] == pytest.approx(stopped + 0.9)
    assert ended["at"] > stopped + 2


def run_cli_history(redis_url: str, prefix: str, *args: str) -> str:
    result = run_cli("history", "--redis-url", redis_url, "--key-prefix", prefix, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout
