"""A simulated member's /metrics reads as BinderHub's and moves with its launches, and a
share of its launches fails as BinderHub's do (issue 19)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fedredirect.memberstate import MemberSimState
from fedredirect.simulator import MemberServer
from tests.support.build_stream import launch
from tests.support.members import running_members
from tests.support.procs import wait_for

LAUNCH_LE = ["2.0", "5.0", "10.0", "20.0", "30.0", "60.0", "120.0", "300.0", "600.0", "+Inf"]
BUILD_LE = ["60.0", "120.0", "300.0", "600.0", "1800.0", "3600.0", "7200.0", "+Inf"]
REPO = {"provider": "GitHub", "repo": "https://github.com/org/repo"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def server() -> Iterator[MemberServer]:
    """A member of its own: its counters start at 0."""
    with running_members(MemberSimState(name="gesis", rate_limit=0, build_delay=0.01)) as (s,):
        yield s


def scrape(url: str) -> Samples:
    """Every sample of the member's /metrics, parsed as the checker parses it."""
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One series' value; None when the member does not serve that series."""
    return samples.get((name, frozenset(labels.items())))


def launches(samples: Samples, status: str, retries: str) -> float | None:
    return value(samples, "binderhub_launch_time_seconds_count", status=status, retries=retries)


def outcome(url: str) -> str:
    """Launch ``org/repo`` once: the phase it ended in."""
    phase: str = launch(f"{url}/build/gh/org/repo/HEAD")[1][-1]["phase"]
    return phase


def test_metrics_are_binderhubs_and_move_with_launches(server: MemberServer) -> None:
    response = httpx.get(f"{server.url}/metrics")
    types = {family.name: family.type for family in text_string_to_metric_families(response.text)}
    assert (
        types.items()
        >= {
            "binderhub_launch_time_seconds": "histogram",
            "binderhub_build_time_seconds": "histogram",
            "binderhub_launch_count": "counter",
            "binderhub_inprogress_launches": "gauge",
        }.items()
    )
    assert launches(scrape(server.url), "success", "0") is None  # nothing launched yet

    assert outcome(server.url) == "ready"  # built, then launched
    after_one = scrape(server.url)
    assert launches(after_one, "success", "0") == 1
    assert value(after_one, "binderhub_launch_count_total", status="success", **REPO) == 1
    assert value(after_one, "binderhub_build_time_seconds_count", status="success") == 1
    assert value(after_one, "binderhub_build_count_total", status="success", **REPO) == 1
    assert value(after_one, "binderhub_inprogress_launches") == 0
    assert value(after_one, "binderhub_inprogress_builds") == 0
    buckets = [dict(labels) for name, labels in after_one if name.endswith("_bucket")]
    launch_le = [b["le"] for b in buckets if b.get("status") == "success" and "retries" in b]
    build_le = [b["le"] for b in buckets if b.get("status") == "success" and "retries" not in b]
    assert sorted(launch_le, key=_bound) == LAUNCH_LE and sorted(build_le, key=_bound) == BUILD_LE

    assert outcome(server.url) == "ready"  # the image is built: only launched
    gitlab = launch(f"{server.url}/build/gl/group%2Fproject/main")[1]
    assert gitlab[-1]["phase"] == "ready"
    after_three = scrape(server.url)
    assert launches(after_three, "success", "0") == 3
    assert value(after_three, "binderhub_launch_count_total", status="success", **REPO) == 2
    gitlab_repo = {"provider": "GitLab", "repo": "https://gitlab.com/group/project"}
    assert value(after_three, "binderhub_launch_count_total", status="success", **gitlab_repo) == 1
    assert value(after_three, "binderhub_build_time_seconds_count", status="success") == 2
    assert launches(after_three, "failure", "-1") is None
    # /metrics is what a checker reads: counted like /health, not kept as a user's request
    assert server.hits["/metrics"] == 4
    assert not [r for r in server.requests if r.target.startswith(b"/metrics")]


def _bound(le: str) -> float:
    return float(le)


def test_half_the_launches_fail_at_share_half(server: MemberServer) -> None:
    answer = httpx.post(f"{server.url}/_sim", json={"launch_failure_share": 0.5})
    assert answer.status_code == 200
    assert answer.json()["launch_failure_share"] == 0.5
    assert httpx.get(f"{server.url}/_sim").json()["launches_at_share"] == 0

    streams = [launch(f"{server.url}/build/gh/org/repo/HEAD")[1] for _ in range(6)]
    assert [events[-1]["phase"] for events in streams] == ["ready", "failed"] * 3
    failed = streams[1]
    image = failed[0]["imageName"]
    assert [e["phase"] for e in failed] == ["built", *["launching"] * 4, "failed"]
    assert [e["message"] for e in failed[2:5]] == [
        f"Launch attempt {n} failed, retrying...\n" for n in (1, 2, 3)
    ]
    assert failed[-1] == {
        "phase": "failed",
        "status_code": 500,
        "message": f"Failed to launch image {image}\n",
    }
    samples = scrape(server.url)
    assert launches(samples, "success", "0") == 3
    assert launches(samples, "failure", "-1") == 3
    assert launches(samples, "retry", "-1") == 9  # each failed launch tried 3 times more
    assert value(samples, "binderhub_launch_count_total", status="success", **REPO) == 3
    assert value(samples, "binderhub_launch_count_total", status="failure", **REPO) == 3
    assert value(samples, "binderhub_inprogress_launches") == 0
    assert httpx.get(f"{server.url}/_sim").json()["launches_at_share"] == 6

    assert httpx.post(f"{server.url}/_sim", json={"launch_failure_share": 1}).status_code == 200
    assert [outcome(server.url) for _ in range(2)] == ["failed", "failed"]
    assert httpx.post(f"{server.url}/_sim", json={"launch_failure_share": 0}).status_code == 200
    assert [outcome(server.url) for _ in range(2)] == ["ready", "ready"]
    assert launches(scrape(server.url), "failure", "-1") == 5


def test_a_quota_refusal_counts_as_binderhub_counts_it(server: MemberServer) -> None:
    """Under its quota's name in binderhub_launch_count, and neither as a success nor a
    failure of binderhub_launch_time_seconds; nor is it one of the launches a share of
    which fails."""
    assert outcome(server.url) == "ready"
    update = {"full": True, "launch_failure_share": 1}
    assert httpx.post(f"{server.url}/_sim", json=update).status_code == 200
    too_many = "Too many users on this BinderHub! Try again soon.\n"
    assert launch(f"{server.url}/build/gh/org/repo/HEAD")[1][-1]["message"] == too_many
    assert launch(f"{server.url}/build/gh/org/other/HEAD")[1] == [
        {"phase": "failed", "message": too_many}
    ]
    samples = scrape(server.url)
    assert value(samples, "binderhub_launch_count_total", status="pod_quota", **REPO) == 1
    other = {**REPO, "repo": "https://github.com/org/other"}
    assert value(samples, "binderhub_launch_count_total", status="pod_quota", **other) == 1
    assert {dict(labels)["status"] for name, labels in samples if "launch_time" in name} == {
        "success"
    }
    assert launches(samples, "success", "0") == 1
    assert httpx.get(f"{server.url}/_sim").json()["launches_at_share"] == 0

    assert httpx.post(f"{server.url}/_sim", json={"full": False}).status_code == 200
    assert outcome(server.url) == "failed"  # the first launch started at share 1
    assert launches(scrape(server.url), "failure", "-1") == 1


def test_launches_in_progress_rise_and_fall_even_when_the_client_leaves(
    server: MemberServer,
) -> None:
    """The gauges count what is under way, and a client that disconnects mid-launch does
    not leave a launch counted in progress forever."""

    def in_progress() -> float:
        samples = scrape(server.url)
        builds = value(samples, "binderhub_inprogress_builds")
        starts = value(samples, "binderhub_inprogress_launches")
        assert builds is not None and starts is not None
        return builds + starts

    assert httpx.post(f"{server.url}/_sim", json={"build_delay": 1.0}).status_code == 200
    with httpx.stream("GET", f"{server.url}/build/gh/org/slow/HEAD", timeout=10) as response:
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        # From here every step of this launch waits a minute: it stays under way.
        assert httpx.post(f"{server.url}/_sim", json={"build_delay": 60}).status_code == 200
        wait_for(lambda: in_progress() == 1, what="one build or launch in progress")
    wait_for(lambda: in_progress() == 0, what="nothing in progress once the client left")
    assert launches(scrape(server.url), "success", "0") is None


def test_a_bad_share_is_refused_with_its_reason(server: MemberServer) -> None:
    answer = httpx.post(f"{server.url}/_sim", json={"launch_failure_share": 2})
    assert answer.status_code == 400
    assert answer.json() == {"error": "field 'launch_failure_share' must be between 0 and 1"}
    assert httpx.get(f"{server.url}/_sim").json()["launch_failure_share"] == 0
    assert outcome(server.url) == "ready"
