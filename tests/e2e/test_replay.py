"""Replay on a history recorded by a real stack: a checker and a router as subprocesses
over simulated members and a real Redis record it, `fedredirect history --export` writes
it, and `fedredirect replay` (from the file, and from Redis) reports the eligible time
this test made happen."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.procs import run_cli, status, wait_for
from tests.support.stack import THREE, named_members, running_stack

FULL = 100  # pods: at the simulator's quota, so full
#: How far a replayed or recorded duration may be from the wall-clock one the test made:
#: a check period (0.3 s) to notice each change at both ends, plus a step of replay.
TOLERANCE = 1.5


@pytest.fixture(scope="module")
def recorded(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A stack whose beta is full for a known span; yields once that span is over."""
    tmp = tmp_path_factory.mktemp("replay-stack")
    prefix = "e2e-replay"
    history = {"observation_interval": 0.5}
    with (
        named_members(*THREE) as members,
        running_stack(members, redis_url, prefix, tmp, weights=THREE, history=history) as stack,
    ):
        url = stack.router
        since = time.time()
        beta = members["beta"]
        wait_for(lambda: time.time() > since + 2, what="2 s of everyone eligible")
        full_from = time.time()
        beta.state.total_pods = FULL
        wait_for(lambda: status(url)["members"]["beta"]["state"] == "full", what="beta full")
        wait_for(lambda: time.time() > full_from + 4, what="4 s of beta full")
        full_until = time.time()
        beta.state.total_pods = 10
        wait_for(
            lambda: status(url)["members"]["beta"]["state"] == "eligible",
            what="beta back",
        )
        wait_for(lambda: time.time() > full_until + 2, what="2 s of everyone again")
        launch = httpx.get(f"{url}/build/gh/org/repo/HEAD", follow_redirects=False)
        assert launch.status_code == 307
        yield {
            "redis": redis_url,
            "prefix": prefix,
            "since": since,
            "full": full_until - full_from,
            "tmp": tmp,
            "config": stack.config,
        }


def cli(rec: dict[str, Any], *args: str) -> Any:
    result = run_cli(*args, "--redis-url", rec["redis"], "--key-prefix", rec["prefix"])
    assert result.returncode == 0, result.stderr
    return result


def check(report: dict[str, Any], full: float) -> None:
    span = report["to"] - report["from"]
    for column in ("replayed", "recorded"):
        got = report[column]
        assert got["eligible_seconds"]["alpha"] == pytest.approx(span, abs=TOLERANCE)
        assert got["eligible_seconds"]["gamma"] == pytest.approx(span, abs=TOLERANCE)
        assert got["state_seconds"]["beta"]["full"] == pytest.approx(full, abs=TOLERANCE)
        assert got["eligible_seconds"]["beta"] == pytest.approx(span - full, abs=TOLERANCE)
        assert got["nobody_eligible_seconds"] == 0


def test_replay_of_an_exported_history(recorded: dict[str, Any]) -> None:
    export = recorded["tmp"] / "history.jsonl"
    cli(recorded, "history", "--since", "1h", "--export", str(export))
    result = run_cli("replay", "--from", str(export), "--since", str(recorded["since"]), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["config"]["from"] == "history"
    assert report["to"] - report["from"] > recorded["full"] + 3
    check(report, recorded["full"])
    text = run_cli("replay", "--from", str(export), "--since", str(recorded["since"]))
    assert "beta eligible" in text.stdout and "would have" in text.stdout


def test_replay_from_redis(recorded: dict[str, Any]) -> None:
    result = cli(recorded, "replay", "--from", "redis", "--since", str(recorded["since"]), "--json")
    report = json.loads(result.stdout)
    assert report["config"]["from"] == "the store"
    check(report, recorded["full"])


def test_replay_under_another_config(recorded: dict[str, Any], tmp_path: Path) -> None:
    """With a headroom that makes every member full, nobody would have been eligible and
    the prime would have taken every launch (fallback: prime)."""
    doc = yaml.safe_load(recorded["config"].read_text())
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**doc, "pod_headroom": 1000}))
    result = cli(
        recorded, "replay", "--since", str(recorded["since"]), "--config", str(other), "--json"
    )
    report = json.loads(result.stdout)
    span = report["to"] - report["from"]
    assert report["replayed"]["nobody_eligible_seconds"] == pytest.approx(span, abs=TOLERANCE)
    assert report["recorded"]["nobody_eligible_seconds"] == 0
    buckets = report["replayed"]["launches"]["buckets"]
    assert {m for b in buckets for m in b["counts"]} == {"alpha"}


def test_a_file_that_is_not_history_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = run_cli("replay", "--from", str(empty))
    assert result.returncode == 1 and "no config event" in result.stderr
    missing = run_cli("replay", "--from", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
