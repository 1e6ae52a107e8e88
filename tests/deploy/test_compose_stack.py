"""docker-compose.yml really starts, and works from the host as a user's browser sees it.

The stack runs under podman-compose on images built here from Debian (compose_podman.py),
with a project name and ports of its own. Everything is checked from the host: a launch on
either router is redirected to a member URL the host can open, and following it reads the
member's build events up to `ready` and opens the server it names; /status shows every
member; a member made full (POST /_sim on its published port) drops out of rotation.
Without root, podman or debootstrap the test is skipped, saying why; on CI it fails instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.deploy.compose_podman import Stack, compose_stack, missing_prerequisites
from tests.support.procs import wait_for

# A cold run builds the Debian base first (debootstrap, about 40 s).
pytestmark = pytest.mark.timeout(900)

LAUNCH = "/build/gh/org/repo/HEAD"
ROUTERS = ("router-1", "router-2")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = missing_prerequisites()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the compose stack test must run on CI: {reason}")
        pytest.skip(reason)
    with compose_stack(tmp_path_factory.mktemp("compose")) as stack:
        try:
            # Images built, containers started: now the checker must have observed every
            # member and both routers must serve that view.
            for router in ROUTERS:
                wait_for(
                    partial(shows, stack, router, dict.fromkeys(stack.members, "eligible")),
                    timeout=120,
                    what=f"{router} to show every member eligible",
                )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{stack.diagnostics()}") from None
        yield stack


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # Straight to 127.0.0.1, never through a proxy from the environment.
    with httpx.Client(timeout=5.0, trust_env=False, follow_redirects=False) as client:
        yield client


def status(stack: Stack, router: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.url(router)}/status.json", timeout=5.0, trust_env=False)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def shows(stack: Stack, router: str, expected: dict[str, str]) -> bool:
    """Whether the router's /status.json gives these members these states."""
    members = status(stack, router)["members"]
    return {name: members[name]["state"] for name in expected} == expected


def launch(http: httpx.Client, stack: Stack, router: str) -> str:
    """Launch on a router as a browser does; return the member that answers the redirect."""
    response = http.get(stack.url(router) + LAUNCH)
    assert response.status_code == 307, (response.status_code, response.text)
    location = response.headers["location"]
    parts = urlsplit(location)
    # The browser runs on the host: the target must be a port published there.
    assert (parts.scheme, parts.hostname) == ("http", "127.0.0.1"), location
    assert parts.path == LAUNCH, location
    member = stack.member_at(location)
    assert member is not None, f"{location} is not the published URL of any member"
    # Headers only: a member's launch answer may be an event stream that stays open.
    with http.stream("GET", location) as page:
        assert page.status_code == 200, (location, page.status_code)
        assert page.headers["x-fedredirect-member"] == member
    return member


def test_a_launch_from_the_host_reaches_a_member(stack: Stack, http: httpx.Client) -> None:
    picks = {router: launch(http, stack, router) for router in ROUTERS}
    # Every replica makes the same choice from the same view.
    assert len(set(picks.values())) == 1, picks


def test_a_launch_from_the_host_reaches_ready(stack: Stack, http: httpx.Client) -> None:
    redirect = http.get(stack.url("router-1") + LAUNCH)
    assert redirect.status_code == 307
    location = redirect.headers["location"]
    member = stack.member_at(location)
    assert member is not None, location
    # BinderHub's build API on the member, read as its JavaScript client reads it.
    events: list[dict[str, Any]] = []
    with http.stream("GET", location, headers={"Accept": "text/event-stream"}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line.removeprefix("data:")))
                if events[-1]["phase"] in ("ready", "failed"):
                    break  # the member keeps the stream open after ready, as BinderHub does
    phases = [event["phase"] for event in events]
    assert phases[-1] == "ready", events
    assert phases[-3:] == ["built", "launching", "ready"]
    # The server the launch ends at is on the member's published URL too.
    server = events[-1]["url"]
    assert server.startswith(stack.url(member) + "/user/"), server
    page = http.get(server)
    assert page.status_code == 200
    assert page.headers["x-fedredirect-member"] == member


def test_status_page_shows_every_member_with_its_browser_url(
    stack: Stack, http: httpx.Client
) -> None:
    for router in ROUTERS:
        page = http.get(stack.url(router) + "/status")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        for member in stack.members:
            assert member in page.text
            assert stack.url(member) in page.text
        members = status(stack, router)["members"]
        assert {name: m["url"] for name, m in members.items()} == {
            member: stack.url(member) for member in stack.members
        }


def test_a_member_made_full_drops_out(stack: Stack, http: httpx.Client) -> None:
    full = launch(http, stack, "router-1")
    answer = http.post(stack.url(full) + "/_sim", json={"full": True})
    assert answer.status_code == 200, answer.text
    try:
        for router in ROUTERS:
            wait_for(
                partial(shows, stack, router, {full: "full"}),
                timeout=60,
                what=f"{router} to see {full} full",
            )
            active = http.get(stack.url(router) + "/active_hosts").json()["active_hosts"]
            assert set(active) == set(stack.members) - {full}
            assert launch(http, stack, router) != full
    finally:
        http.post(stack.url(full) + "/_sim", json={"full": False})
        # Leave the stack as the other tests expect it.
        wait_for(
            lambda: all(shows(stack, r, {full: "eligible"}) for r in ROUTERS),
            timeout=60,
            what=f"{full} eligible again",
        )
