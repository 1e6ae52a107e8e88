"""Structured logs: one JSON object a line, a line per state change, none per redirect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from fedredirect.simulator import MemberSimState
from tests.support.procs import launch, wait_for
from tests.support.stack import named_members, running_stack


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line must be one JSON object


def test_json_logs_record_state_and_reference_changes(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    with (
        named_members("alpha", "beta") as members,
        running_stack(
            members, redis_url, key_prefix, tmp_path, checker_args=("--log-format", "json")
        ) as stack,
    ):
        a, b, r = members["alpha"], members["beta"], stack.router
        log, router_log = stack.checker_log, stack.router_log()
        b.state.total_pods = 100
        wait_for(
            lambda: any(
                e.get("event") == "member_state_changed" and e.get("new") == "full"
                for e in json_lines(log)
            ),
            what="a JSON line for beta becoming full",
        )
        a.state.binderhub_version = "2.0.0"
        wait_for(
            lambda: any(
                e.get("event") == "reference_changed"
                and (e.get("new") or {}).get("binderhub") == "2.0.0"
                for e in json_lines(log)
            ),
            what="a JSON line for the reference change",
        )
        with httpx.Client() as client:
            for i in range(50):
                launch(client, r, f"/build/gh/org/logged{i}/HEAD")
    events = json_lines(log)
    full = next(e for e in events if e.get("new") == "full")
    assert full["member"] == "beta" and full["old"] == "eligible"
    assert full["reasons"] == ["full: 100 pods + headroom 10 >= quota 100"]
    assert full["level"] == "info" and "ts" in full and "beta" in full["msg"]
    ref = next(e for e in events if e.get("event") == "reference_changed" and e["old"])
    assert ref["old"]["binderhub"] == MemberSimState.binderhub_version
    assert ref["source"] == "prime alpha"
    assert "logged" not in router_log.read_text()  # no line per redirect
