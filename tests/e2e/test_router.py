"""The router as users and operators meet it: real processes, real ports, real Redis."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from fedredirect.simulator import MemberSimState
from fedredirect.store_access import open_store
from router.history import launches_event
from tests.support.members import running_members
from tests.support.procs import (
    launch,
    router,
    run_cli,
    status,
    wait_for,
    write_config,
)
from tests.support.stack import Stack


def test_redirect_keeps_path_and_query_and_sets_cors_and_cookie(stack: Stack) -> None:
    r1 = stack.router
    with httpx.Client() as client:
        response = launch(client, r1, "/build/gh/Org/Repo/main?urlpath=lab%2Ftree&x=1")
    assert response.status_code == 307
    location = response.headers["location"]
    target = next(u for u in stack.member_urls() if location.startswith(u + "/"))
    assert location == target + "/build/gh/Org/Repo/main?urlpath=lab%2Ftree&x=1"
    assert response.headers["access-control-allow-origin"] == "*"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"host={target};")
    assert "Path=/build/gh/Org/Repo;" in cookie
    assert "Max-Age=7200" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_secure_cookie_behind_https_proxy(stack: Stack) -> None:
    r1 = stack.router
    response = httpx.get(f"{r1}/build/gh/org/repo/HEAD", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in response.headers["set-cookie"]


def test_head_is_redirected_too(stack: Stack) -> None:
    r1 = stack.router
    response = httpx.head(f"{r1}/build/gh/org/repo/HEAD")
    assert response.status_code == 307
    assert any(response.headers["location"].startswith(u) for u in stack.member_urls())


def test_replicas_agree_and_refs_of_a_repo_land_together(stack: Stack) -> None:
    r1, r2 = stack.routers
    with httpx.Client() as client:
        for i in range(60):
            a = launch(client, r1, f"/build/gh/org/repo{i}/HEAD").headers["location"]
            b = launch(client, r2, f"/build/gh/ORG/Repo{i}/v1.0").headers["location"]
            assert a.split("/build/")[0] == b.split("/build/")[0], i


def test_sticky_cookie_is_honoured_only_for_an_eligible_member(stack: Stack) -> None:
    r1 = stack.router
    members = stack.members
    path = "/build/gh/org/sticky/HEAD"
    with httpx.Client() as client:
        natural = launch(client, r1, path).headers["location"].split("/build/")[0]
        other = next(m for m in members.values() if m.url != natural)
        pinned = launch(client, r1, path, cookies={"host": other.url})
        assert pinned.headers["location"] == other.url + path
        foreign = launch(client, r1, path, cookies={"host": "https://evil.example"})
        assert foreign.headers["location"] == natural + path
        other.state.total_pods = 100  # full: the cookie must no longer pin launches to it
        try:
            wait_for(
                lambda: (
                    launch(client, r1, path, cookies={"host": other.url}).headers["location"]
                    == natural + path
                ),
                what="cookie ignored for a full member",
            )
        finally:
            other.state.total_pods = 10
        wait_for(lambda: len(status(r1)["targets"]) == 3, what="member back")


def test_active_hosts_lists_eligible_members_in_the_legacy_shape(stack: Stack) -> None:
    r1 = stack.router
    members = stack.members
    hosts = httpx.get(f"{r1}/active_hosts").json()["active_hosts"]
    assert set(hosts) == {"alpha", "beta", "gamma"}
    assert hosts["alpha"] == {
        "url": members["alpha"].url,
        "weight": 50.0,
        "prime": True,
        "health": members["alpha"].url + "/health",
        "versions": members["alpha"].url + "/versions",
    }
    members["gamma"].state.hub_ok = False
    try:
        wait_for(
            lambda: (
                set(httpx.get(f"{r1}/active_hosts").json()["active_hosts"]) == {"alpha", "beta"}
            ),
            what="unhealthy gamma leaves active_hosts",
        )
        doc = status(r1)["members"]["gamma"]
        assert doc["state"] == "unhealthy"
        assert doc["reasons"] == ["check failed: JupyterHub API"]
    finally:
        members["gamma"].state.hub_ok = True


def test_status_json_carries_the_whole_view(stack: Stack) -> None:
    r1 = stack.router
    doc = status(r1)
    assert doc["reference"]["policy"] == "prime"
    assert doc["reference"]["source"] == "prime alpha"
    assert doc["reference"]["stale"] is False
    assert doc["reference"]["age_seconds"] < doc["reference"]["max_age_seconds"]
    assert doc["checker"]["heartbeat_age_seconds"] < 5
    assert doc["version_gate"]["suspended"] is False
    assert doc["fallback"] == {"policy": "prime", "active": False, "reason": None}
    beta = doc["members"]["beta"]
    assert beta["total_pods"] == 10 and beta["quota"] == 100
    assert beta["versions"]["binderhub"] == MemberSimState.binderhub_version
    assert beta["record_age_seconds"] < 5
    # its weight x its free share of the quota x its slow start (a new federation ramps)
    factor = beta["slow_start"]["factor"] if beta["slow_start"] else 1.0
    assert beta["effective_weight"] == pytest.approx(50.0 * beta["capacity"]["share"] * factor)
    assert beta["weight_reasons"][0].startswith("capacity: ")
    # every member's part of every router's launches in the last hour, whatever the balancer
    assert {m["launch_share"]["window_seconds"] for m in doc["members"].values()} == {3600.0}
    # the documented shape operators script against (docs/status-json.md), router keys included
    schema_path = Path(__file__).resolve().parents[2] / "docs/status.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(doc)]
    assert errors == []
    assert "router" in doc and "redirects" in doc


def test_router_health_is_ok_with_a_fresh_view(stack: Stack) -> None:
    r1 = stack.router
    response = httpx.get(f"{r1}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_other_pages_are_proxied_to_the_prime(stack: Stack) -> None:
    r1 = stack.router
    response = httpx.get(f"{r1}/about?x=1")
    assert response.status_code == 200
    assert response.headers["x-fedredirect-member"] == "alpha"
    assert "/about?x=1" in response.text


@pytest.mark.parametrize(
    "path",
    [
        "//evil.example/build/x",
        "/build//evil.example",
        "/build/..%2f..%2fevil",
        "/build/gh/org/repo/HEAD%0d%0aLocation:%20https://evil.example",
        "/build/@evil.example",
        "/build/gh/org/repo/HEAD?next=https://evil.example",
    ],
)
def test_hostile_paths_never_redirect_off_the_federation(stack: Stack, path: str) -> None:
    r1 = stack.router
    with httpx.Client() as client:
        response = launch(client, r1, path)
    assert response.status_code < 500
    location = response.headers.get("location")
    if location is not None:
        assert any(location.startswith(u + "/") for u in stack.member_urls()), location
        assert "\r" not in location and "\n" not in location


def test_absolute_form_request_target_stays_on_members(stack: Stack) -> None:
    """`GET http://evil.example/build/x HTTP/1.1` must not produce a Location at evil."""
    import socket

    r1 = stack.router
    port = int(r1.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"GET http://evil.example/build/gh/org/repo/HEAD HTTP/1.1\r\n"
            b"Host: evil.example\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head = answer.split(b"\r\n\r\n")[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 307"), head
    locations = [
        line.split(":", 1)[1].strip()
        for line in head.splitlines()
        if line.lower().startswith("location:")
    ]
    assert len(locations) == 1
    assert any(locations[0].startswith(u + "/build/gh/") for u in stack.member_urls()), head


def test_router_without_a_snapshot_reports_unhealthy(redis_url: str, key_prefix: str) -> None:
    with router(redis_url, key_prefix) as url:
        health = httpx.get(f"{url}/health")
        assert health.status_code == 503
        assert "no snapshot" in health.json()["reason"]
        launch_answer = httpx.get(f"{url}/build/gh/org/repo/HEAD")
        assert launch_answer.status_code == 503


async def _record_launches(stack: Stack, counts: Counter[tuple[str, str]]) -> None:
    """A router's launch counts in history, as each router adds them once a minute."""
    now = time.time()
    async with open_store(stack.redis_url, stack.prefix) as store:
        await store.append_history([launches_event("r-test:1", now, counts, now)], 10_000)


def test_status_command_prints_the_routers_view(stack: Stack) -> None:
    """With each member's weight, configured -> effective and why, and its share of every
    router's launches in the last hour (history's counts: one router's written here)."""
    asyncio.run(_record_launches(stack, Counter({("alpha", "balancer"): 6})))
    done = run_cli("status", *stack.store_args)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "reference:" in out and "source prime alpha" in out
    for name in ("alpha (prime)", "beta", "gamma"):
        assert name in out
    assert "launches go to:" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("MEMBER"))
    assert header.split()[:5] == ["MEMBER", "STATE", "PODS", "LAUNCHES", "SHARE"]
    assert header.split()[-2:] == ["WEIGHT", "REASONS"]
    alpha = next(line for line in lines if line.startswith("alpha (prime)"))
    share = re.search(r" (\d+)% \((\d+) in 1h\) ", alpha)
    assert share is not None and int(share[2]) >= 6, alpha
    assert re.search(r" 50 -> [\d.]+ ", alpha), alpha
    printed = run_cli("status", "--json", *stack.store_args)
    members = json.loads(printed.stdout)["members"]
    assert members["alpha"]["launch_share"]["launches"] >= 6
    assert members["alpha"]["launch_share"]["window_seconds"] == 3600.0


def test_invalid_config_exits_before_serving(tmp_path: Path, redis_url: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hosts": {"a": {"url": "ftp://a.example", "weight": 1}}}')
    proc = run_cli("checker", "--config", str(bad), "--redis-url", redis_url)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "hosts.a.url" in proc.stderr
    assert "http(s)" in proc.stderr


def test_env_vars_configure_the_checker(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    with running_members(MemberSimState("solo")) as (solo,):
        config = write_config(tmp_path / "f.yaml", {"solo": (solo, 1.0, True)})
        env = {
            **os.environ,
            "FEDREDIRECT_CONFIG": str(config),
            "FEDREDIRECT_REDIS_URL": redis_url,
            "FEDREDIRECT_KEY_PREFIX": key_prefix,
        }
        proc = subprocess.Popen([sys.executable, "-m", "fedredirect.cli", "checker"], env=env)
        try:
            with router(redis_url, key_prefix) as url:
                wait_for(lambda: status(url)["targets"] == ["solo"], what="env-configured checker")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
