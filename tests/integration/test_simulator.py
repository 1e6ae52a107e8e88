"""The simulated member speaks real BinderHub payloads over real HTTP, and fails on demand."""

from __future__ import annotations

import dataclasses
import json
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fedredirect.simulator import HUGE_BYTES, MemberServer, MemberSimState
from tests.support.members import running_members

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
    """The shared server, with its state back to the defaults."""
    state, _ = shared_member
    fresh = MemberSimState(name=state.name)
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
        {"full": "yes"},
        [1, 2],
        "not json at all",
    ],
)
def test_post_sim_rejects_bad_updates(
    member: tuple[MemberSimState, MemberServer], body: object
) -> None:
    _, server = member
    before = httpx.get(f"{server.url}/_sim").json()
    if isinstance(body, str):
        response = httpx.post(f"{server.url}/_sim", content=body)
    else:
        response = httpx.post(f"{server.url}/_sim", json=body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert httpx.get(f"{server.url}/_sim").json() == before


def test_other_paths_answer_with_member_page(member: tuple[MemberSimState, MemberServer]) -> None:
    state, server = member
    state.fault = "http503"  # faults only affect /health and /versions
    for path in ("/", "/build/gh/org/repo/HEAD", "/v2/gh/org/repo/HEAD?urlpath=lab"):
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 200
        assert response.headers["X-Fedredirect-Member"] == "gesis"
        assert "<h1>member gesis</h1>" in response.text
        assert path.replace("&", "&amp;") in response.text


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


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of the child's stdout, or fail after `timeout` instead of blocking forever."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no output within {timeout}s")
    return proc.stdout.readline()


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
