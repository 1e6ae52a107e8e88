"""A simulated member's launches take pods (``pod_lifetime``, issue 18): each launch that
reaches ``ready`` adds a user pod to what /health reports, on top of the pods set by hand,
until its lifetime is over; a member so filled refuses launches as BinderHub does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fedredirect.memberstate import MemberSimState
from fedredirect.simulator import MemberServer
from tests.support.build_stream import launch
from tests.support.child import member_sim, member_sim_flag
from tests.support.members import refused_sim_update, running_members
from tests.support.procs import wait_for

REPO = Path(__file__).resolve().parents[2]
TOO_MANY = "Too many users on this BinderHub! Try again soon.\n"


@pytest.fixture
def server() -> Iterator[MemberServer]:
    """A member of its own with 10 idle pods, its image built (so a launch is quick), and
    no rate limit on launches without a build token."""
    state = MemberSimState(name="gesis", rate_limit=0, build_delay=0.01)
    with running_members(state) as (s,):
        assert phase(s.url) == "ready"  # pod_lifetime 0: this launch starts no pod
        yield s


def phase(url: str, repo: str = "org/repo") -> str:
    """Launch ``repo`` once: the phase it ended in."""
    ended: str = launch(f"{url}/build/gh/{repo}/HEAD")[1][-1]["phase"]
    return ended


def quota_check(url: str) -> dict[str, Any]:
    """The pod quota check of the member's /health."""
    checks = httpx.get(f"{url}/health", timeout=5).json()["checks"]
    check: dict[str, Any] = next(c for c in checks if c["service"] == "Pod quota")
    return check


def set_sim(url: str, **update: object) -> dict[str, Any]:
    answer = httpx.post(f"{url}/_sim", json=update, timeout=5)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def test_launches_take_pods_that_go_away_after_their_lifetime(server: MemberServer) -> None:
    assert quota_check(server.url)["total_pods"] == 10  # the launch before started none
    assert set_sim(server.url, pod_lifetime=3)["pod_lifetime"] == 3
    before = time.monotonic()  # the member runs in this process: the same clock
    assert [phase(server.url) for _ in range(3)] == ["ready"] * 3
    check = quota_check(server.url)
    assert (check["total_pods"], check["user_pods"], check["ok"]) == (13, 13, True)
    assert httpx.get(f"{server.url}/_sim").json()["launched_pods"] == 3

    wait_for(lambda: quota_check(server.url)["total_pods"] == 10, 15, "the pods to end")
    assert time.monotonic() >= before + 3  # none ended before its lifetime was over
    sim = httpx.get(f"{server.url}/_sim").json()
    assert (sim["launched_pods"], sim["total_pods"]) == (0, 10)


def test_a_short_lifetime_lets_pods_go_within_a_deadline(server: MemberServer) -> None:
    set_sim(server.url, pod_lifetime=0.5)
    before = time.monotonic()
    assert [phase(server.url) for _ in range(4)] == ["ready"] * 4
    wait_for(lambda: quota_check(server.url)["total_pods"] == 10, 10, "the pods to end")
    assert time.monotonic() >= before + 0.5  # they were there: ended, not never started
    assert httpx.get(f"{server.url}/_sim").json()["launched_pods"] == 0


def test_pods_set_by_hand_are_the_baseline_launched_pods_add_to(server: MemberServer) -> None:
    set_sim(server.url, pod_lifetime=600)
    assert [phase(server.url) for _ in range(2)] == ["ready"] * 2
    sim = set_sim(server.url, total_pods=5)
    assert (sim["total_pods"], sim["launched_pods"]) == (5, 2)
    assert quota_check(server.url)["total_pods"] == 7
    set_sim(server.url, pod_lifetime=0)  # later launches start none; the running ones run on
    assert phase(server.url) == "ready"
    assert quota_check(server.url)["total_pods"] == 7


def test_a_member_filled_by_its_launches_refuses_the_next(server: MemberServer) -> None:
    set_sim(server.url, pod_lifetime=600, quota=12)
    assert [phase(server.url) for _ in range(2)] == ["ready"] * 2
    check = quota_check(server.url)
    assert (check["total_pods"], check["quota"], check["ok"]) == (12, 12, False)
    assert launch(f"{server.url}/build/gh/org/repo/HEAD")[1][-1]["message"] == TOO_MANY
    assert launch(f"{server.url}/build/gh/org/other/HEAD")[1] == [
        {"phase": "failed", "message": TOO_MANY}
    ]
    metrics = httpx.get(f"{server.url}/metrics").text
    refused = [
        line
        for line in metrics.splitlines()
        if line.startswith("binderhub_launch_count_total{") and 'status="pod_quota"' in line
    ]
    assert len(refused) == 2 and all(line.endswith(" 1.0") for line in refused)
    assert quota_check(server.url)["total_pods"] == 12  # a refused launch takes no pod


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"pod_lifetime": -1}, "pod_lifetime"),
        ({"pod_lifetime": "long"}, "pod_lifetime"),
        ({"pod_lifetime": True}, "pod_lifetime"),
        ({"pod_lifetime": None}, "pod_lifetime"),
        ('{"pod_lifetime": NaN}', "pod_lifetime"),
        ('{"pod_lifetime": Infinity}', "pod_lifetime"),
        ({"pod_lifetime": 5, "quota": -1}, "quota"),  # one bad field: none applied
        ({"launched_pods": 3}, "launched_pods"),
        ({"pod_ends": [1.0]}, "pod_ends"),
    ],
)
def test_post_sim_rejects_a_bad_pod_lifetime(
    server: MemberServer, body: dict[str, object] | str, named: str
) -> None:
    assert named in refused_sim_update(server.url, body)


def test_a_counted_field_says_what_to_set_instead(server: MemberServer) -> None:
    answer = httpx.post(f"{server.url}/_sim", json={"launched_pods": 3})
    assert answer.json() == {
        "error": "'launched_pods' is counted from launches; total_pods sets the idle pods"
    }


def test_member_sim_takes_a_pod_lifetime() -> None:
    """``fedredirect member-sim --pod-lifetime`` documents itself, refuses a negative one
    (exit 2, naming it), and starts a member whose launches take pods."""
    refused = "--pod-lifetime: must be 0 or more seconds, got -1"
    member_sim_flag("--pod-lifetime", "--pod-lifetime SECONDS", "-1", refused)
    args = ("--name", "x", "--rate-limit", "0", "--pods", "3", "--pod-lifetime", "600")
    with member_sim(*args) as url:
        assert httpx.get(f"{url}/_sim", timeout=5).json()["pod_lifetime"] == 600
        assert phase(url) == "ready"
        assert quota_check(url)["total_pods"] == 4
