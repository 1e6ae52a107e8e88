"""The simulated member speaks real BinderHub payloads over real HTTP, and fails on demand."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fedredirect.faults import HUGE_BYTES
from fedredirect.shapes import SHAPES
from fedredirect.simulator import MemberServer, MemberSimState
from tests.support.build_stream import launch
from tests.support.child import member_sim, member_sim_flag, read_line
from tests.support.dom import Dom
from tests.support.members import refused_sim_update, running_members

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "fixtures" / "binderhub"  # copies of ../shared/binderhub


@pytest.fixture(scope="module")
def shared_member() -> Iterator[tuple[MemberSimState, MemberServer]]:
    """One server for the module: stopping a uvicorn server takes ~0.2 s."""
    state = MemberSimState(name="gesis")
    with MemberServer(state) as server:
        yield state, server


@pytest.fixture
def member(
    shared_member: tuple[MemberSimState, MemberServer],
) -> tuple[MemberSimState, MemberServer]:
    """The shared server, with its state back to the defaults, but for BinderHub's rate
    limit: these tests launch without build tokens more often than it allows in an hour
    (tests/integration/test_build_token.py tests the limit on members of their own)."""
    state, _ = shared_member
    fresh = MemberSimState(name=state.name, rate_limit=0)
    for field in dataclasses.fields(state):
        setattr(state, field.name, getattr(fresh, field.name))
    return shared_member


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def assert_same_shape(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Same keys, same JSON types; checks are matched by their `service`."""
    assert set(got) == set(want)
    by_service = {check["service"]: check for check in got["checks"]}
    assert list(by_service) == [check["service"] for check in want["checks"]]
    assert type(got["ok"]) is type(want["ok"])
    for want_check in want["checks"]:
        got_check = by_service[want_check["service"]]
        assert set(got_check) == set(want_check)
        for key, value in want_check.items():
            assert type(got_check[key]) is type(value), key


@pytest.mark.parametrize(
    ("sample_name", "update", "status"),
    [
        ("health-ok.json", {}, 200),
        ("health-full.json", {"full": True}, 200),
        ("health-down.json", {"healthy": False}, 503),
    ],
)
def test_health_matches_binderhub_samples(
    member: tuple[MemberSimState, MemberServer],
    sample_name: str,
    update: dict[str, Any],
    status: int,
) -> None:
    _, server = member
    want = sample(sample_name)
    assert httpx.post(f"{server.url}/_sim", json=update).status_code == 200
    response = httpx.get(f"{server.url}/health")
    assert response.status_code == status
    got = response.json()
    assert_same_shape(got, want)
    assert got["ok"] == want["ok"]
    quota_ok = [check["ok"] for check in got["checks"] if check["service"] == "Pod quota"]
    want_quota_ok = [check["ok"] for check in want["checks"] if check["service"] == "Pod quota"]
    assert quota_ok == want_quota_ok


def test_health_with_no_quota_is_never_full(member: tuple[MemberSimState, MemberServer]) -> None:
    state, server = member
    state.quota, state.total_pods = None, 10_000
    quota = httpx.get(f"{server.url}/health").json()["checks"][2]
    assert quota["quota"] is None
    assert quota["ok"] is True


def test_registry_down_is_a_hard_failure(member: tuple[MemberSimState, MemberServer]) -> None:
    state, server = member
    state.registry_ok = False
    response = httpx.get(f"{server.url}/health")
    assert response.status_code == 503
    assert response.json()["ok"] is False


def test_versions_matches_binderhub_sample(member: tuple[MemberSimState, MemberServer]) -> None:
    _, server = member
    response = httpx.get(f"{server.url}/versions")
    assert response.status_code == 200
    assert response.json() == sample("versions.json")


def test_post_sim_changes_answers(member: tuple[MemberSimState, MemberServer]) -> None:
    _, server = member
    update = {"binderhub_version": "1.1.0", "repo2docker_version": "2025.01.0"}
    response = httpx.post(f"{server.url}/_sim", json=update)
    assert response.status_code == 200
    assert response.json()["binderhub_version"] == "1.1.0"
    assert httpx.get(f"{server.url}/_sim").json() == response.json()
    versions = httpx.get(f"{server.url}/versions").json()
    assert versions["binderhub"] == "1.1.0"
    assert versions["builder"] == "quay.io/jupyterhub/repo2docker:2025.01.0"

    assert httpx.post(f"{server.url}/_sim", json={"hub_ok": False}).status_code == 200
    assert httpx.get(f"{server.url}/health").status_code == 503
    assert httpx.post(f"{server.url}/_sim", json={"healthy": True}).json()["hub_ok"] is True
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_full_fills_the_quota_and_back(member: tuple[MemberSimState, MemberServer]) -> None:
    state, server = member
    full = httpx.post(f"{server.url}/_sim", json={"quota": None, "full": True}).json()
    assert (full["quota"], full["total_pods"]) == (100, 100)
    assert httpx.post(f"{server.url}/_sim", json={"full": False}).json()["total_pods"] == 10
    assert state.total_pods == 10


@pytest.mark.parametrize(
    "body",
    [
        {"nope": 1},
        {"total_pods": "ten"},
        {"total_pods": True},
        {"hub_ok": 1},
        {"quota": 1.5},
        {"fault": "meteor"},
        {"delay": -1},
        {"build_delay": -0.1},
        {"built": "gh/org/repo"},
        {"built": [1]},
        {"full": "yes"},
        {"launch_failure_share": 1.5},
        {"launch_failure_share": -0.1},
        {"launch_failure_share": "half"},
        {"launch_failure_share": True},
        {"launch_failure_share": None},
        '{"launch_failure_share": NaN}',
        {"launches_at_share": -1},
        {"launch_failure_share": 0.5, "quota": -1},  # one bad field: none applied
        [1, 2],
        "not json at all",
    ],
)
def test_post_sim_rejects_bad_updates(
    member: tuple[MemberSimState, MemberServer], body: object
) -> None:
    _, server = member
    assert refused_sim_update(server.url, body)


def test_other_paths_answer_with_member_page(member: tuple[MemberSimState, MemberServer]) -> None:
    state, server = member
    state.fault = "http503"  # faults only affect /health and /versions
    for path in ("/", "/about/page", "/other/gh/org/repo/HEAD?urlpath=lab&x=1"):
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 200
        assert response.headers["X-Fedredirect-Member"] == "gesis"
        assert "<h1>member gesis</h1>" in response.text
        assert path.replace("&", "&amp;") in response.text


BUILD_PHASES = ["waiting", "fetching", "building", "built", "launching", "ready"]
CACHED_PHASES = ["built", "launching", "ready"]


def test_build_streams_binderhub_phases_and_caches_the_image(
    member: tuple[MemberSimState, MemberServer],
) -> None:
    state, server = member
    headers, first = launch(f"{server.url}/build/gh/Org/Repo/HEAD")
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-cache"
    assert headers["access-control-allow-origin"] == "*"
    assert headers["x-fedredirect-member"] == "gesis"
    assert [e["phase"] for e in first] == BUILD_PHASES
    assert all(e["message"].endswith("\n") for e in first)
    image = first[3]["imageName"]
    assert state.built == [image] == httpx.get(f"{server.url}/_sim").json()["built"]
    ready = first[-1]
    assert set(ready) == {
        *("phase", "message", "url", "token", "image", "repo_url"),
        *("binder_ref_url", "binder_launch_host", "binder_request", "binder_persistent_request"),
    }
    assert ready["image"] == image
    assert ready["url"].startswith(f"{server.url}/user/org-repo-") and ready["url"].endswith("/")
    assert ready["message"] == f"server running at {ready['url']}\n"
    assert ready["binder_launch_host"] == server.url + "/"
    assert ready["binder_request"] == "v2/gh/Org/Repo/HEAD"
    sha = image.rpartition(":")[2]
    assert ready["binder_persistent_request"] == f"v2/gh/Org/Repo/{sha}"
    assert ready["repo_url"] == "https://github.com/Org/Repo"
    assert ready["binder_ref_url"] == f"https://github.com/Org/Repo/tree/{sha}"

    _, second = launch(f"{server.url}/build/gh/Org/Repo/HEAD")
    assert [e["phase"] for e in second] == CACHED_PHASES
    assert second[0] == {
        "phase": "built",
        "imageName": image,
        "message": "Found built image, launching...\n",
    }
    assert second[-1]["token"] != ready["token"] and second[-1]["url"] != ready["url"]
    _, other_ref = launch(f"{server.url}/build/gh/Org/Repo/v1.0")
    assert [e["phase"] for e in other_ref] == BUILD_PHASES  # another ref, another image
    assert httpx.post(f"{server.url}/_sim", json={"built": []}).json()["built"] == []
    assert [e["phase"] for e in launch(f"{server.url}/build/gh/Org/Repo/HEAD")[1]] == BUILD_PHASES


def test_ready_url_is_on_the_host_the_client_asked(
    member: tuple[MemberSimState, MemberServer],
) -> None:
    """Behind a published port or a proxy the member's own address is not the client's."""
    _, server = member
    _, events = launch(f"{server.url}/build/gl/group%2Fproject/main", {"Host": "hub.example:8443"})
    ready = events[-1]
    assert ready["url"].startswith("http://hub.example:8443/user/group-project-")
    assert ready["binder_launch_host"] == "http://hub.example:8443/"
    assert ready["repo_url"] == "https://gitlab.com/group/project"


def test_build_preflight_and_head_start_no_launch(
    member: tuple[MemberSimState, MemberServer],
) -> None:
    state, server = member
    preflight = httpx.options(
        f"{server.url}/build/gh/org/repo/HEAD",
        headers={"Origin": "https://site.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-headers"] == "cache-control"
    assert preflight.content == b""
    head = httpx.head(f"{server.url}/build/gh/org/repo/HEAD")
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.headers["access-control-allow-origin"] == "*"
    assert state.built == []


def test_build_failures_are_events_as_binderhub_sends_them(
    member: tuple[MemberSimState, MemberServer],
) -> None:
    state, server = member
    _, unknown = launch(f"{server.url}/build/svn/org/repo/HEAD")
    assert unknown == [{"phase": "failed", "message": "No provider found for prefix svn\n"}]
    _, built = launch(f"{server.url}/build/gh/org/repo/HEAD")
    assert httpx.post(f"{server.url}/_sim", json={"full": True}).status_code == 200
    too_many = "Too many users on this BinderHub! Try again soon.\n"
    _, cached = launch(f"{server.url}/build/gh/org/repo/HEAD")
    found = built[3] | {"message": "Found built image, launching...\n"}
    assert cached == [found, {"phase": "failed", "message": too_many}]
    _, fresh = launch(f"{server.url}/build/gh/org/other/HEAD")
    assert fresh == [{"phase": "failed", "message": too_many}]
    assert state.built == [built[3]["imageName"]]


def test_build_delay_paces_the_events(member: tuple[MemberSimState, MemberServer]) -> None:
    _, server = member
    assert httpx.post(f"{server.url}/_sim", json={"build_delay": 0.1}).status_code == 200
    started = time.monotonic()
    _, events = launch(f"{server.url}/build/gh/org/slow/HEAD")
    assert len(events) == 6
    assert time.monotonic() - started >= 0.6


def test_a_ready_server_has_a_page_and_others_do_not(
    member: tuple[MemberSimState, MemberServer],
) -> None:
    _, server = member
    ready = launch(f"{server.url}/build/gh/org/repo/HEAD")[1][-1]
    page = httpx.get(ready["url"], params={"token": ready["token"]})
    assert page.status_code == 200
    assert page.headers["x-fedredirect-member"] == "gesis"
    found = Dom(page.text).by_id("member")
    assert found is not None and found[1] == "gesis"
    assert httpx.get(f"{server.url}/user/nobody-12345678/").status_code == 404


def test_launch_page_launches_through_build_on_its_own_origin(
    member: tuple[MemberSimState, MemberServer],
) -> None:
    _, server = member
    page = httpx.get(f"{server.url}/v2/gh/org/repo/HEAD?urlpath=lab")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    dom = Dom(page.text)
    found = dom.by_id("launch")
    assert found is not None
    assert found[0]["data-build"] == "/build/gh/org/repo/HEAD"  # relative: the page's origin
    assert dom.by_id("phases") is not None and dom.by_id("result") is not None
    assert dom.scripts == 2  # window.pageConfig (the build token), then the launch
    assert not [attrs for _tag, attrs, _text in dom.elements if {"src", "href"} & set(attrs)]


def test_launch_page_escapes_the_spec(member: tuple[MemberSimState, MemberServer]) -> None:
    _, server = member
    page = httpx.get(f"{server.url}/v2/gh/o/%22%3E%3Cimg%20src%3Dx%3E/HEAD")
    dom = Dom(page.text)
    assert [tag for tag, _attrs, _text in dom.elements if tag == "img"] == []
    found = dom.by_id("launch")
    assert found is not None
    assert found[0]["data-build"] == "/build/gh/o/%22%3E%3Cimg%20src%3Dx%3E/HEAD"


@pytest.mark.parametrize("path", ["/health", "/versions"])
@pytest.mark.parametrize("status", [500, 502, 503])
def test_fault_http_status(
    member: tuple[MemberSimState, MemberServer], path: str, status: int
) -> None:
    state, server = member
    state.fault = f"http{status}"
    response = httpx.get(f"{server.url}{path}")
    assert response.status_code == status
    assert response.content == b""


@pytest.mark.parametrize("path", ["/health", "/versions"])
def test_fault_not_json_and_wrong_shape(
    member: tuple[MemberSimState, MemberServer], path: str
) -> None:
    state, server = member
    state.fault = "not_json"
    response = httpx.get(f"{server.url}{path}")
    assert (response.status_code, response.text) == (200, "<html>oops</html>")
    state.fault = "wrong_shape"
    response = httpx.get(f"{server.url}{path}")
    assert (response.status_code, response.json()) == (200, {"hello": "world"})


def test_fault_redirect(member: tuple[MemberSimState, MemberServer]) -> None:
    state, server = member
    state.fault = "redirect"
    response = httpx.get(f"{server.url}/health")  # httpx does not follow redirects by default
    assert response.status_code == 302
    assert response.headers["location"] == "http://127.0.0.1:1/"


def test_fault_huge(member: tuple[MemberSimState, MemberServer]) -> None:
    state, server = member
    state.fault = "huge"
    response = httpx.get(f"{server.url}/versions")
    assert response.status_code == 200
    assert len(response.content) == HUGE_BYTES == 2 * 1024 * 1024
    assert "content-length" not in response.headers  # a checker must count while reading
    assert response.json()["ok"] is True


def test_fault_hang_times_out(member: tuple[MemberSimState, MemberServer]) -> None:
    state, server = member
    state.fault = "hang"
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.url}/health", timeout=0.5)
    assert time.monotonic() - started < 3
    assert httpx.get(f"{server.url}/", timeout=2).status_code == 200  # the server still serves


def test_fault_drip_sends_a_byte_at_a_time(member: tuple[MemberSimState, MemberServer]) -> None:
    state, server = member
    state.fault = "drip"
    received = b""
    with httpx.stream("GET", f"{server.url}/health", timeout=3) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            received += chunk
            if len(received) >= 2:
                break
    assert received == b"  "


def test_fault_reset_breaks_the_body(member: tuple[MemberSimState, MemberServer]) -> None:
    state, server = member
    state.fault = "reset"
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.get(f"{server.url}/health", timeout=3)


def test_delay_slows_health(member: tuple[MemberSimState, MemberServer]) -> None:
    state, server = member
    state.delay = 0.3
    started = time.monotonic()
    assert httpx.get(f"{server.url}/health", timeout=3).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_running_members_serve_independently() -> None:
    states = (MemberSimState(name="a"), MemberSimState(name="b", hub_ok=False))
    with running_members(*states) as (a, b):
        assert a.port != b.port
        assert httpx.get(f"{a.url}/health").status_code == 200
        assert httpx.get(f"{b.url}/health").status_code == 503
        assert httpx.get(f"{b.url}/").headers["X-Fedredirect-Member"] == "b"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{a.url}/health", timeout=1)


def test_main_prints_url_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fedredirect.simulator",
            "--name",
            "x",
            "--port",
            "0",
            "--quota",
            "none",
            "--pods",
            "3",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(proc, timeout=10)
        assert line.startswith("member x listening on http://127.0.0.1:")
        url = line.split()[-1]
        health = httpx.get(f"{url}/health", timeout=5).json()
        assert health["checks"][2]["quota"] is None
        assert health["checks"][2]["total_pods"] == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    assert "Traceback" not in proc.stderr.read()


def test_member_sim_takes_a_launch_failure_share() -> None:
    """``fedredirect member-sim --launch-failure-share`` documents itself, refuses a share
    out of 0..1 (exit 2, naming it), and starts a member that fails that share."""
    refused = "--launch-failure-share: must be between 0 and 1, got 1.5"
    member_sim_flag("--launch-failure-share", "0.5: every second", "1.5", refused)
    with member_sim("--name", "x", "--rate-limit", "0", "--launch-failure-share", "1") as url:
        assert httpx.get(f"{url}/_sim", timeout=5).json()["launch_failure_share"] == 1
        assert launch(f"{url}/build/gh/org/repo/HEAD")[1][-1]["status_code"] == 500


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_recorded_shape_is_selected_with_post_sim(
    member: tuple[MemberSimState, MemberServer], name: str
) -> None:
    """``POST /_sim {"health_shape": NAME}`` (or ``versions_shape``) serves that recorded
    answer as BinderHub served it: its status, its bytes."""
    _, server = member
    shape = SHAPES[name]
    key = f"{shape.endpoint}_shape"
    assert httpx.post(f"{server.url}/_sim", json={key: name}).status_code == 200
    response = httpx.get(f"{server.url}/{shape.endpoint}")
    assert (response.status_code, response.content) == (shape.status, shape.body())
